# Benchmarks (not tests): hdiaks-widgets beside pylivy and Airflow's LivyHook on one local
# sandbox; writes docs/benchmarks.md. Needs the Airflow 3 virtualenv from mk/airflow.mk.
.PHONY: bench
bench: setup $(AIRFLOW3_VENV)/.installed
	$(BIN)/python bench/run_benchmarks.py
