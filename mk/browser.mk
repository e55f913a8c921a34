# Headless Chromium for tests/test_browser.py (JupyterLab driven by playwright).
# Debian's chromium package is used; `playwright install` is never run (it downloads a browser).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: browser-deps
browser-deps: $(CHROMIUM)

$(CHROMIUM):
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

TEST_DEPS += browser-deps
