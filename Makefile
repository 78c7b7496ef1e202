# Everything runs inside .venv, created and filled from requirements.txt on first use, with bam_tf
# installed into it in editable mode (so `bam-train`, `bam-export`, `bam-experiments` and tools/ work).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
MODEL_DIR ?= runs/quickstart

.PHONY: setup demo test test-slow clean

setup: $(VENV)/.installed

# --no-deps: requirements.txt is a complete lock (see its header for why).
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-deps -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# Without GLUE_DIR the demo reads GLUE through tensorflow_datasets, downloading it once if needed.
demo: setup
	$(PY) -m bam_tf.train --flagfile=configs/quickstart.flags --model_dir=$(MODEL_DIR) \
	    $(if $(GLUE_DIR),--glue_dir=$(GLUE_DIR),--data_source=tfds --tfds_download)

# Two workers, each taking whole test files (so a file's shared fixtures train once): most tests are
# start-up and tracing bound, one core each. More workers than cores only contend.
TEST_WORKERS ?= 2

test: setup
	$(PY) -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadfile tests

test-slow: setup
	$(PY) -m pytest -q -m slow tests

clean:
	rm -rf runs .pytest_cache
