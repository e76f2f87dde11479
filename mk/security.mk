# security.mk - libsodium, for the keyed pseudonyms of redaction
# (src/core/redact.c, HTTPTAPE_REDACT_KEY): HMAC-SHA-256 from a maintained
# Debian library (libsodium-dev, installed by scripts/install-deps.sh).
LDLIBS += -lsodium
