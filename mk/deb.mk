# deb.mk - `make deb`: the Debian package from debian/, with
# `dpkg-buildpackage -b -us -uc`, built in a copy of the tracked files under
# $(BUILD)/deb/src (dpkg-buildpackage writes its .deb, .changes and
# .buildinfo into the parent directory: here $(BUILD)/deb, not the
# checkout's parent). The copy has no .git, so it gets a VERSION file with
# this tree's version (scripts/version.sh): `httptape --version` in the
# package says which commit it came from. Then lintian, when installed,
# on the .changes (tests/integration/install.bats checks what it says).
# The package's own make must not inherit this one's flags or BUILD (BUILD=...
# on our command line would be its build directory, and its clean's).
# Needs debhelper and dpkg-dev besides the build packages; it compiles
# everything again (a minute or so).
DEB_DIR  := $(BUILD)/deb
DEB_JOBS ?= 2

.PHONY: deb
deb:
	$(Q)rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	$(Q)git ls-files -z | xargs -0 cp -P --parents -t $(DEB_DIR)/src
	$(Q)scripts/version.sh >$(DEB_DIR)/src/VERSION
	$(Q)cd $(DEB_DIR)/src && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u BUILD \
	    dpkg-buildpackage -b -us -uc -j$(DEB_JOBS)
	$(Q)if command -v lintian >/dev/null; then \
	    lintian --info $(DEB_DIR)/*.changes | tee $(DEB_DIR)/lintian.txt; fi
	@ls $(DEB_DIR)/*.deb
