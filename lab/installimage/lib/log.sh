# shellcheck shell=bash
# Logging, command running and error reporting.
#
# Everything a run does lands in the debug file (Hetzner: /root/debug.txt); the console only gets
# one line per step. The debug file is truncated when a run starts, so a reason found in it
# always belongs to the run that just exited (a stale reason from an earlier run cannot make a
# failing run look explained).
#
# Secrets: nothing here ever prints an argument list that could hold CRYPTPASSWORD, because the
# password never travels in argv (it is piped to cryptsetup's stdin), and we do not use `set -x`,
# whose trace would print the expanded `printf` that feeds it.

DEBUG_FILE="${INSTALLIMAGE_DEBUG_FILE:-/root/debug.txt}"
RUN_STEP="startup"

debug_reset() {
  : >"$DEBUG_FILE"
  chmod 600 "$DEBUG_FILE"
}

debug() {
  printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >>"$DEBUG_FILE"
}

# One line for the operator, and the same line in the debug file.
say() {
  printf '%s\n' "$*"
  debug "$*"
}

# Stops the run with exit code 1 (Hetzner's only failure code) and leaves the reason in the
# debug file, where automation looks for it.
die() {
  local message="ERROR: $*"
  printf '%s\n' "$message" >&2
  printf '%s\n' "$message" >>"$DEBUG_FILE"
  trap - ERR
  exit 1
}

# Runs a command with its output in the debug file. A failure names the step and the command.
# The error line carries the command's last output lines too: automation reads only ERROR: lines,
# and "exited with 5" alone does not say why.
run() {
  debug "+ $(quote_args "$@")"
  local rc=0 start
  start="$(stat -c %s "$DEBUG_FILE")"
  "$@" >>"$DEBUG_FILE" 2>&1 || rc=$?
  if ((rc != 0)); then
    die "step ${RUN_STEP}: '$(quote_args "$@")' exited with ${rc}: $(output_tail "$start")"
  fi
}

# The last lines a command wrote to the debug file after byte offset $1, on one line.
output_tail() {
  local lines
  lines="$(tail -c "+$(($1 + 1))" "$DEBUG_FILE" | tail -n 3 | tr '\n' ' ')"
  printf '%s(all output in %s)' "${lines:+${lines% } }" "$DEBUG_FILE"
}

# Like run, but a failure is only logged (Hetzner treats a few things, such as the post-install
# script, as advisory). Returns the command's exit code.
run_advisory() {
  debug "+ $(quote_args "$@")"
  local rc=0
  "$@" >>"$DEBUG_FILE" 2>&1 || rc=$?
  ((rc == 0)) || debug "WARNING: step ${RUN_STEP}: '$(quote_args "$@")' exited with ${rc}; continuing"
  return "$rc"
}

quote_args() {
  local quoted
  printf -v quoted '%q ' "$@"
  printf '%s' "${quoted% }"
}

# set -E makes this fire in functions and subshells too. It catches what `run` does not wrap
# (tests, redirections, builtins), so no failure can pass silently or without a reason.
on_error() {
  local rc="$1" line="$2" source_file="$3" command="$4"
  die "step ${RUN_STEP}: '${command}' failed with exit ${rc} at ${source_file##*/}:${line}"
}

install_error_trap() {
  trap 'on_error "$?" "$LINENO" "${BASH_SOURCE[0]}" "$BASH_COMMAND"' ERR
}
