# Two commands for a fresh machine:  `make run` (install + start the app)  and  `make test` (install + run the tests).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test install lint demo clean

$(STAMP): requirements.txt requirements-app.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

# The library never looks for ../shared by itself; in a checkout beside it, hand its real fixtures to the app
# (the Hallucinations page's real forest probe).
run: export SR_SHARED_DATA ?= $(wildcard $(abspath ../shared/data))
run: $(STAMP)
	$(PY) -m streamlit run app.py

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .

demo: $(STAMP)
	$(PY) -m sr_core demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
