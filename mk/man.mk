# man.mk - the manual pages, written in roff by hand under man/ (NAME.SECTION.in),
# with @VERSION@, @BINDIR@ and @PKGLIBDIR@ filled in (mk/version.mk,
# mk/install.mk): $(MAN_OUT)/httptape.1,
# httptape-events.5, httptape-config.5. Part of `make` (small) and of
# `make install`. `make man-check` renders each with man and groff and fails
# on any warning.
MAN_OUT   := $(BUILD)/man
MAN_PAGES := $(patsubst man/%.in,$(MAN_OUT)/%,$(wildcard man/*.in))
all: $(MAN_PAGES)

$(MAN_OUT)/%: man/%.in $(VERSION_TXT) $(PATHS_H)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  MAN     $@")
	$(Q)sed -e "s|@VERSION@|$$(cat $(VERSION_TXT))|g" -e 's|@BINDIR@|$(BINDIR)|g' \
	    -e 's|@PKGLIBDIR@|$(PKGLIBDIR)|g' $< >$@.tmp && mv -f $@.tmp $@

.PHONY: man man-check
man: $(MAN_PAGES)

man-check: $(MAN_PAGES)
	$(Q)for p in $(MAN_PAGES); do \
	    w=$$( { MANWIDTH=80 man --warnings -l $$p >/dev/null; groff -man -ww -z $$p; } 2>&1); \
	    if [ -n "$$w" ]; then echo "$$p:"; echo "$$w"; exit 1; fi; \
	done; echo "  MAN     $(words $(MAN_PAGES)) pages render without warnings"
