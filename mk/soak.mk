# The reliability campaign (issue 13, item 4; bench/soak.py): bounded loops on loopback against
# the real sandbox (submits and watched batches under injected faults, token expiry and
# revocation, a restart with reused ids, hostile inputs, canary secrets); about ten minutes on
# 2 cores. Prints the table docs/reliability.md reports, writes docs/reliability.json and the
# figure docs/reliability.png. Its short version runs in `make test` (tests/test_soak_short.py).
.PHONY: soak
SOAK_PLOT := $(VENV)/.soak-plot

$(SOAK_PLOT): | $(BIN)/python
	$(BIN)/pip install -q "matplotlib>=3.8"
	touch $@

soak: setup $(SOAK_PLOT)
	$(BIN)/python bench/soak.py --json docs/reliability.json --plot docs/reliability.png
