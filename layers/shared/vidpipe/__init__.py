"""vidpipe: the code shared by every Lambda function (deployed as the shared layer)."""
