# Apache Airflow in its own virtualenvs, for tests/test_dag_airflow.py: the exported DAG must
# import on the latest Airflow 3.x and on 2.10.x, in both styles, and run end to end with
# `airflow dags test`. Airflow pins many packages, so it never goes into the main .venv.
# Versions of the providers are pinned for 2.10.5 because their newest releases require a newer
# Airflow and pip's backtracking through them is slow; for 3.x the newest releases are wanted.
AIRFLOW3_VENV := .venv-airflow3
AIRFLOW2_VENV := .venv-airflow2
AIRFLOW_COMMON_PKGS := msal requests
AIRFLOW3_PKGS := apache-airflow apache-airflow-providers-apache-livy \
	apache-airflow-providers-microsoft-azure $(AIRFLOW_COMMON_PKGS)
AIRFLOW2_PKGS := apache-airflow==2.10.5 apache-airflow-providers-apache-livy==4.4.5 \
	apache-airflow-providers-microsoft-azure==12.8.1 $(AIRFLOW_COMMON_PKGS)

.PHONY: airflow-deps
airflow-deps: $(AIRFLOW3_VENV)/.hdiaks $(AIRFLOW2_VENV)/.hdiaks

$(AIRFLOW3_VENV)/.installed: mk/airflow.mk
	rm -rf $(AIRFLOW3_VENV)
	$(PYTHON) -m venv $(AIRFLOW3_VENV)
	$(AIRFLOW3_VENV)/bin/pip install -q --upgrade pip
	$(AIRFLOW3_VENV)/bin/pip install -q $(AIRFLOW3_PKGS)
	touch $@

$(AIRFLOW2_VENV)/.installed: mk/airflow.mk
	rm -rf $(AIRFLOW2_VENV)
	$(PYTHON) -m venv $(AIRFLOW2_VENV)
	$(AIRFLOW2_VENV)/bin/pip install -q --upgrade pip
	$(AIRFLOW2_VENV)/bin/pip install -q $(AIRFLOW2_PKGS)
	touch $@

# The package itself, re-installed when its dependencies change (Airflow is not rebuilt then).
%/.hdiaks: %/.installed pyproject.toml
	$*/bin/pip install -q -e ".[airflow]"
	touch $@

TEST_DEPS += $(AIRFLOW3_VENV)/.hdiaks $(AIRFLOW2_VENV)/.hdiaks
