# The two commands: `make demo` and `make test`. Both build .venv/ first.
# Lambda runs Python 3.12, so the venv does too (pyenv's 3.12 when present).
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12) python3)
VENV := .venv
SAM_VENV := .venv-sam
PY312_DIR := $(dir $(PYTHON))
export SAM_CLI_TELEMETRY := 0

.PHONY: demo test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

.venv: $(VENV)/.installed

demo: .venv
	$(VENV)/bin/vidpipe demo --out out/demo

test: .venv
	$(VENV)/bin/python -m pytest -n 2 -q

# aws-sam-cli pins an older boto3, so it lives in its own venv.
$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==1.170.0
	touch $@

lint: .venv $(SAM_VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml
	PATH="$(PY312_DIR):$$PATH" $(SAM_VENV)/bin/sam validate --lint --region us-east-1
	PATH="$(PY312_DIR):$$PATH" $(SAM_VENV)/bin/sam build --region us-east-1 --build-dir .aws-sam/build
	$(VENV)/bin/python scripts/check_lambda_sizes.py .aws-sam/build

bench: .venv
	$(VENV)/bin/python bench/run_all.py

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam out
