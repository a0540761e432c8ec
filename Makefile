# The two commands of the README, with set-up included:
#   make study   set up, then the main job
#   make test    set up, then the test suite
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.stnlib-installed

.PHONY: setup study test flagship clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[study,sweep,prepare,test]"
	touch $(STAMP)

setup: $(STAMP)

study: setup
	$(BIN)/python -m stnlib.reproduce --profile quick --output results --figures figures

flagship: setup
	$(BIN)/python -m stnlib.learn -d mnist5k -e 10 -m CNN -l CNN -p 0 --rotate -o adam --lr 0.001 --seed 0 \
		-n runs/flagship --overwrite

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs
