"""Productions: a script → a storyboard → shots (child generation executions) → one episode.

See flow.py for the steps and statemachines/production.asl.json for their order."""
