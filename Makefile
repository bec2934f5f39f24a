# Two commands on a fresh machine (both idempotent; each creates .venv on first use):
#   make run    set up, then run the main job on the default data in ../shared
#   make test   set up, then run the test suite
PYTHON ?= python3.11
# the default benchmark: Tables 1-2 (`celebrities`, `commons`), every differentiable zoo model as source, all targets
METHODS ?= none,noise,fi-uap,opom-center,opom-affine,opom-convex
# the generator methods run from the sources they have shipped checkpoints for (methods/weights/)
GENERATORS ?= advcloak,advcloak-center,advcloak-affine,advcloak-convex,advfaces-plus,advfaces,gap
GENERATOR_SOURCES ?= dlib-resnet,hse-faceres,mobileface
# the norm trade-off and inference-photo figures (paper Fig. 3b/4a/4b): one source, where crafting is cheapest
SWEEP_METHODS ?= noise,advcloak-convex,advfaces-plus,gap,opom-convex,fi-uap
SWEEP_SOURCE ?= mobileface
SWEEP_TARGETS ?= dlib-resnet,hse-faceres,mobileface
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test bench-speed

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: the CPU machines here install these two from local wheels
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e ".[test,onnx]"
	# facenet-pytorch pins torch<2.3 in its metadata but works with 2.14: install it without deps
	$(BIN)/python -m pip install -q --no-deps facenet-pytorch==2.6.0
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/bench data prepare lfw
	$(BIN)/bench data prepare vggface2-train
	$(BIN)/bench data prepare vggface2-test
	$(BIN)/bench data prepare glint-celeb24
	$(BIN)/bench data info
	for split in celebrities commons; do \
	  $(BIN)/bench run --methods $(METHODS) --target all --split $$split && \
	  $(BIN)/bench run --methods $(GENERATORS) --source $(GENERATOR_SOURCES) --target all --split $$split || exit 1; \
	done
	$(BIN)/bench run --methods $(SWEEP_METHODS) --source $(SWEEP_SOURCE) --target $(SWEEP_TARGETS) --split celebrities --budget 400,800,1200,1600,2000
	$(BIN)/bench run --methods none,$(SWEEP_METHODS) --source $(SWEEP_SOURCE) --target $(SWEEP_TARGETS) --split celebrities --n-inference 1,3,5,10
	$(BIN)/bench report

test: setup
	$(BIN)/python -m pytest -q

bench-speed: setup
	$(BIN)/python -m pytest -q tests/benchmarks --benchmark-enable
