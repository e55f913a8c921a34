# Benchmarks (not tests): hdiaks-widgets beside pylivy and Airflow's LivyHook on one local
# sandbox; writes docs/benchmarks.md. Needs the Airflow 3 virtualenv from mk/airflow.mk.
.PHONY: bench
bench: setup $(AIRFLOW3_VENV)/.installed
	$(BIN)/python bench/run_benchmarks.py

# Issue 14: a real ipykernel watching 50 growing batches of bench/poll_server.py, one thread per
# batch against the shared poller; prints the table of docs/benchmarks.md's section.
.PHONY: bench-notebook
bench-notebook: setup
	$(BIN)/python bench/notebook_responsiveness.py
