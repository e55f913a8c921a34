# Benchmarks (not tests): hdiaks-widgets beside pylivy and Airflow's LivyHook on one local
# sandbox; writes docs/benchmarks.md. Needs the Airflow 3 virtualenv from mk/airflow.mk.
.PHONY: bench
bench: setup $(AIRFLOW3_VENV)/.installed bench-peers
	$(BIN)/python bench/run_benchmarks.py

# Issue 13: raw requests, hdiaks-widgets, pylivy and LivyHook on bench/load_server.py (S1-S4,
# snapshot cost) and the token economy; each writes its own section of docs/benchmarks.md.
.PHONY: bench-peers
bench-peers: setup $(AIRFLOW3_VENV)/.installed
	$(BIN)/python bench/peers.py
	$(BIN)/python bench/token_economy.py

# Issue 14: a real ipykernel watching 50 growing batches of bench/poll_server.py, one thread per
# batch against the shared poller; prints the table of docs/benchmarks.md's section.
.PHONY: bench-notebook
bench-notebook: setup
	$(BIN)/python bench/notebook_responsiveness.py
