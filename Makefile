# moat: build, test and install.  GNU make.
#
#   make              build every program into bin/
#   make check        run the whole test suite (TAP, via prove)
#   make check-asan   the same suite, built with ASan + UBSan into bin-asan/
#   make fuzz         build the libFuzzer targets into fuzz/bin/ (clang)
#   make install      install under $(DESTDIR)$(PREFIX)

PREFIX ?= /var/moat
CC ?= cc
BIN ?= bin
BUILD ?= build

WARN = -std=c11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
HARDEN = -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fPIE
OPT ?= -O2 -g
SAN ?=
CPPFLAGS += -D_GNU_SOURCE -DMOAT_PREFIX='"$(PREFIX)"' -Isrc/lib
CFLAGS += $(WARN) $(OPT) $(HARDEN) $(SAN)
LDFLAGS += -pie -Wl,-z,relro,-z,now -Wl,--as-needed $(SAN)
LDLIBS += -lcdb -lcares

PROGS = moat-queue moat-smtpd moat-tcpd moat moat-clean moat-send moat-newu moat-lspawn moat-local moat-rspawn moat-remote moat-inject moat-sendmail moat-setup moat-start moat-tlsd
LIBSRC = $(wildcard src/lib/*.c)
LIBOBJ = $(LIBSRC:src/lib/%.c=$(BUILD)/lib/%.o)
UNITSRC = $(wildcard tests/unit/*.c)
UNITBIN = $(UNITSRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZSRC = $(wildcard fuzz/*.c)
FUZZBIN = $(FUZZSRC:fuzz/%.c=fuzz/bin/%)

all: $(PROGS:%=$(BIN)/%) $(UNITBIN)

# moat-sendmail acts by the name it is called by: sendmail, mailq and
# newaliases are links to it beside the programs (see moat-sendmail(8))
SENDMAIL_LINKS = sendmail mailq newaliases
all: $(SENDMAIL_LINKS:%=$(BIN)/%)
$(SENDMAIL_LINKS:%=$(BIN)/%): $(BIN)/moat-sendmail
	ln -sf moat-sendmail $@

$(BUILD)/lib/%.o: src/lib/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libmoat.a: $(LIBOBJ)
	rm -f $@
	ar rcs $@ $^

$(BIN)/%: $(BUILD)/%.o $(BUILD)/libmoat.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libmoat.a $(LDLIBS)

# only moat-tlsd is linked with OpenSSL (moat-smtpd runs it on STARTTLS)
$(BIN)/moat-tlsd: LDLIBS += -lssl -lcrypto
# moat-smtpd checks AUTH passwords with crypt(3), `moat smtpuser` makes them (libxcrypt, part of
# libc6-dev); kept even when ASan's own crypt_r would satisfy the linker,
# since that one only forwards to libcrypt's
$(BIN)/moat-smtpd $(BIN)/moat: LDLIBS += -Wl,--no-as-needed -lcrypt -Wl,--as-needed

# moat-queue and moat-local run once per message.  Where musl-gcc is there
# (tools/deps installs musl-tools) they are linked statically against musl:
# no dynamic loader and no glibc start-up probing of the CPU, which costs
# about 0.3 ms per exec on a virtual machine (bench/README.md: 0.19 ms
# instead of 0.51 per moat-queue).  They use no NSS, DNS or cdb.  MUSL_CC=
# (as check-asan does) builds them like every other program.
MUSL_CC ?= $(shell command -v musl-gcc 2>/dev/null)
MUSL_LIB = /usr/lib/$(subst -gnu,-musl,$(shell $(CC) -dumpmachine))
STATIC_PROGS = moat-queue moat-local
STATIC_LIB = str io log envelope paths queue date control dotqmail
ifneq ($(MUSL_CC),)
ifneq ($(wildcard $(MUSL_LIB)/rcrt1.o),)
$(BUILD)/musl/%.o: src/%.c
	@mkdir -p $(@D)
	$(MUSL_CC) $(CPPFLAGS) $(WARN) $(OPT) -fstack-protector-strong -fPIE \
	  -MMD -MP -c -o $@ $<
$(BUILD)/musl/lib/paths.o: $(BUILD)/prefix
# a static PIE: musl-gcc's own specs know only dynamic PIE, so name the
# start files (rcrt1.o relocates the program itself) and tell ld
$(STATIC_PROGS:%=$(BIN)/%): $(BIN)/%: $(BUILD)/musl/%.o \
  $(STATIC_LIB:%=$(BUILD)/musl/lib/%.o)
	@mkdir -p $(@D)
	$(MUSL_CC) -nostartfiles -static \
	  -Wl,-pie,--no-dynamic-linker,-z,text,-z,relro,-z,now -o $@ \
	  $(MUSL_LIB)/rcrt1.o $(MUSL_LIB)/crti.o \
	  $(shell $(MUSL_CC) -print-file-name=crtbeginS.o) $^ -lc \
	  $(shell $(MUSL_CC) -print-file-name=crtendS.o) $(MUSL_LIB)/crtn.o
endif
endif

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libmoat.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $< $(BUILD)/libmoat.a $(LDLIBS)

# the suite: unit tests, SMTP dialogues, end-to-end tests, short fuzz runs
check: all
	MOAT_BIN=$(abspath $(BIN)) MOAT_UNIT=$(abspath $(BUILD)/tests) \
	  prove --exec '' --timer -j2 tests/run/*.t

check-asan:
	$(MAKE) MUSL_CC= BIN=bin-asan BUILD=build-asan OPT='-O1 -g -fno-omit-frame-pointer' \
	  HARDEN='-fPIE' SAN='-fsanitize=address,undefined -fno-sanitize-recover=undefined' \
	  check

fuzz: $(FUZZBIN)

# every library module is linked (and so a prerequisite); UB aborts, so
# libFuzzer sees it as a crash instead of a message it ignores
fuzz/bin/%: fuzz/%.c $(LIBSRC) $(wildcard src/lib/*.h)
	@mkdir -p $(@D)
	clang -g -O1 -std=c11 -D_GNU_SOURCE -Isrc/lib \
	  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -o $@ $< $(LIBSRC) $(LDLIBS)

MAN5 = $(wildcard man/*.5)
MAN8 = $(wildcard man/*.8)

# the compiled-in prefix: what uses MOAT_PREFIX is rebuilt when PREFIX
# changes, so `make install PREFIX=...` never installs programs built for
# another prefix (moat-queue, being setuid, trusts only its own)
$(BUILD)/prefix: FORCE
	@mkdir -p $(@D)
	@echo '$(PREFIX)' | cmp -s - $@ || echo '$(PREFIX)' > $@
$(BUILD)/lib/paths.o $(BUILD)/moat-setup.o $(BUILD)/moat-start.o: $(BUILD)/prefix
FORCE:

# programs, manual pages, an empty control/ and the systemd units (with
# PREFIX filled in); accounts, queue and moat-queue's setuid bit are
# moat-setup's job.  An upgrade replaces moat-queue atomically, keeping
# its owner and mode, so injection never stops.
INITSRC = $(wildcard init/*.service init/*.socket)
install: $(PROGS:%=$(BIN)/%) $(SENDMAIL_LINKS:%=$(BIN)/%)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/control \
	  $(DESTDIR)$(PREFIX)/man/man5 $(DESTDIR)$(PREFIX)/man/man8 \
	  $(DESTDIR)$(PREFIX)/systemd
	install -m 755 $(filter-out $(BIN)/moat-queue,$(PROGS:%=$(BIN)/%)) \
	  $(DESTDIR)$(PREFIX)/bin/
	q=$(DESTDIR)$(PREFIX)/bin/moat-queue; \
	if [ -u "$$q" ] && [ ! -L "$$q" ]; then \
	  install -m 700 $(BIN)/moat-queue "$$q.new" && \
	  chown --reference="$$q" "$$q.new" && \
	  chmod --reference="$$q" "$$q.new" && mv -f "$$q.new" "$$q"; \
	else install -m 755 $(BIN)/moat-queue "$$q"; fi
	$(foreach l,$(SENDMAIL_LINKS),ln -sfn moat-sendmail $(DESTDIR)$(PREFIX)/bin/$(l);)
	$(if $(MAN5),install -m 644 $(MAN5) $(DESTDIR)$(PREFIX)/man/man5/)
	$(if $(MAN8),install -m 644 $(MAN8) $(DESTDIR)$(PREFIX)/man/man8/)
	for f in $(INITSRC); do \
	  sed 's|@PREFIX@|$(PREFIX)|g' $$f > $(DESTDIR)$(PREFIX)/systemd/$${f##*/} && \
	  chmod 644 $(DESTDIR)$(PREFIX)/systemd/$${f##*/} || exit 1; \
	done
	@echo "next, as root: $(PREFIX)/bin/moat-setup (see README: Install on a server)"

clean:
	rm -rf bin bin-asan build build-asan fuzz/bin

.PHONY: all check check-asan fuzz clean install FORCE
.SECONDARY:

-include $(wildcard $(BUILD)/*.d $(BUILD)/lib/*.d $(BUILD)/tests/*.d \
  $(BUILD)/musl/*.d $(BUILD)/musl/lib/*.d)
