# The two commands: `make demo` and `make test`. Both build .venv/ first.
# Lambda runs Python 3.12, so the venv does too (pyenv's 3.12 when present).
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12) python3)
VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
PY312_DIR := $(dir $(PYTHON))
export SAM_CLI_TELEMETRY := 0

.PHONY: demo test test-fast faults long scale lint sam-local bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

.venv: $(VENV)/.installed

demo: .venv
	$(VENV)/bin/vidpipe demo --out out/demo

test: .venv
	$(VENV)/bin/python -m pytest -n 8 -q -m "not scale and not faults and not built and not long"

# The whole fault matrix (tests/integration/test_fault_matrix.py, docs/reliability.md): every fault
# kind on every endpoint, once and always, plus stops and kills. `make test` runs one per endpoint.
faults: .venv
	$(VENV)/bin/python -m pytest -n 2 -q -m faults

# Local-stack runs over ~5 s each (a 47-shot production, the CLI end to end, slow hand-backs): CI runs them.
long: .venv
	$(VENV)/bin/python -m pytest -n 2 -q -m long

# The scale runs (tests/integration/test_scale.py, docs/scale.md): a one-hour video, then 50 generations and
# 5 one-hour analyses at once; CI runs them. Figures for docs/scale.md: bench/scale_costs.py. One after the other:
# both are CPU-bound, and side by side they starve each other's handlers (time the local stack counts).
scale: .venv
	$(VENV)/bin/python -m pytest -q -m scale

# aws-sam-cli pins an older boto3, so it lives in its own venv.
$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==1.170.0
	touch $@

# checkov pins boto3==1.35.49 and packaging<24 (the project needs boto3>=1.40): its own venv too.
$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==3.3.30
	touch $@

lint: .venv $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed
	$(VENV)/bin/lint-imports
	$(VENV)/bin/cfn-lint template.yaml
	# Every failed check is fixed or skipped in template.yaml with its reason (Metadata.checkov.skip).
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --quiet --compact --skip-download
	PATH="$(PY312_DIR):$$PATH" $(SAM_VENV)/bin/sam validate --lint --region us-east-1
	PATH="$(PY312_DIR):$$PATH" $(SAM_VENV)/bin/sam build --region us-east-1 --build-dir .aws-sam/build
	$(VENV)/bin/python scripts/check_lambda_sizes.py .aws-sam/build
	VIDPIPE_SAM_BUILD_DIR=.aws-sam/build $(VENV)/bin/python -m pytest -q -p no:cacheprovider -m built tests/unit/test_template_operations.py

# Every function in a real Lambda container: `sam local invoke` against `vidpipe local up`
# (scripts/sam_local/run.sh). As root: installs docker.io and debootstrap when missing and
# starts dockerd when none runs (stopping it after).
sam-local: .venv $(SAM_VENV)/.installed
	bash scripts/sam_local/run.sh $(PYTHON)

bench: .venv
	$(VENV)/bin/python bench/run_all.py

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam out
