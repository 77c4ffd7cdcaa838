# shellcheck shell=bash
# Step 15: the post-install script, run inside the new system (chroot) as root. As on Hetzner,
# its failure is logged in the debug file but does not fail the install; its output goes to the
# debug file, so it must not print secrets.
#
# Searched in order: -x <script>, /root/post-install, /post-install. (Hetzner's -x symlinks the
# script to /post-install, so a stale link from an earlier run fires again; we read -x directly.)

step_run_post_install() {
  local script
  script="$(post_install_script)"
  if [[ -z "$script" ]]; then
    debug "no post-install script"
    return 0
  fi
  install -m 700 -- "$script" "${RUN_TARGET}/post-install"
  if in_target_advisory /post-install; then
    debug "post-install script ${script} succeeded"
  else
    say "WARNING: post-install script ${script} failed; see ${DEBUG_FILE}"
  fi
  rm -f "${RUN_TARGET}/post-install"
}

post_install_script() {
  if [[ -n "$OPT_POST_INSTALL" ]]; then
    post_install_script_path
  elif [[ -x /root/post-install ]]; then
    printf '/root/post-install'
  elif [[ -x /post-install ]]; then
    printf '/post-install'
  fi
  return 0
}

in_target_advisory() {
  run_advisory chroot "$RUN_TARGET" /usr/bin/env -i HOME=/root LC_ALL=C TERM=dumb \
    DEBIAN_FRONTEND=noninteractive PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
