# Shared by the test scripts (cli.sh, faults.sh): a scratch directory, counters, and the
# one-line-error check. Source it; call `finish NAME` at the end.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "ok: $1"; }
bad() { fail=$((fail + 1)); echo "FAIL: $1"; }

# expect_error NAME FRAGMENT CMD...: non-zero exit (not a signal), exactly one stderr line
# containing FRAGMENT.
expect_error() {
  local name=$1 frag=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  local lines; lines=$(wc -l <"$tmp/err")
  if [[ $rc -ne 0 && $rc -lt 128 && $lines -eq 1 ]] && grep -q -- "$frag" "$tmp/err"; then ok "$name"
  else bad "$name (exit $rc, $lines stderr lines): $(head -c 300 "$tmp/err")"; fi
}

finish() { echo "$1: $pass passed, $fail failed"; [[ $fail -eq 0 ]]; }
