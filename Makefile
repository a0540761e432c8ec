# The two commands of the README, with set-up included:
#   make study   set up, then the main job
#   make test    set up, then the test suite
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PIP = $(BIN)/python -m pip install --quiet --disable-pip-version-check
# make study installs only what the study runs (half a minute less than every extra); make test and
# make setup install everything, which serves the study too.
STUDY_STAMP = $(VENV)/.stnlib-study-installed
STAMP = $(VENV)/.stnlib-installed

.PHONY: setup study test flagship clean

# The study's set-up skips byte-compiling the whole environment (half a minute, most of it for modules the
# study never imports); the study then writes the bytecode of what it imports, once, on first use.
$(STUDY_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --no-compile -e ".[study]"
	touch $(STUDY_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e ".[study,sweep,prepare,test]"
	touch $(STAMP) $(STUDY_STAMP)

setup: $(STAMP)

study: $(STUDY_STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m stnlib.reproduce --profile quick --output results --figures figures
	$(BIN)/python docs/generate.py --only claims readings

flagship: $(STUDY_STAMP)
	$(BIN)/python -m stnlib.learn -d mnist5k -e 10 -m CNN -l CNN -p 0 --rotate -o adam --lr 0.001 --seed 0 \
		-n runs/flagship --overwrite

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs
