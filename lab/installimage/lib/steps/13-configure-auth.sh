# shellcheck shell=bash
# Step 13: how root logs in. With public keys (SSHKEYS_URL / -K, else the rescue's Robot keys
# unless -t no) the root password is disabled and sshd accepts root by key only. Without keys,
# root gets the rescue system's root password hash and password login, as on Hetzner.

readonly ROBOT_USER_KEYS=/root/.ssh/robot_user_keys

step_configure_auth() {
  local keys
  keys="$(public_keys_to_install)"
  if [[ -n "$keys" ]]; then
    install_root_keys "$keys"
    set_permit_root_login prohibit-password
  else
    copy_rescue_root_password
    set_permit_root_login yes
  fi
}

public_keys_to_install() {
  local source="$CFG_SSHKEYS_URL"
  if [[ "$source" =~ ^(https?|ftp):// ]]; then
    download "$source" /dev/stdout 2>>"$DEBUG_FILE" ||
      die "SSHKEYS_URL: expected public keys at ${source}, found the download failing"
  elif [[ -n "$source" ]]; then
    cat -- "$source"
  elif [[ "$CFG_TAKEOVER_KEYS" == yes && -s "$ROBOT_USER_KEYS" ]]; then
    cat -- "$ROBOT_USER_KEYS"
  fi
  return 0
}

install_root_keys() {
  local keys="$1"
  install -d -m 700 "${RUN_TARGET}/root/.ssh"
  printf '%s\n' "$keys" >>"${RUN_TARGET}/root/.ssh/authorized_keys"
  chmod 600 "${RUN_TARGET}/root/.ssh/authorized_keys"
  # '*' matches no password: key login only.
  in_target usermod --password '*' root
  debug "installed $(grep -c . <<<"$keys") public key(s) for root; root password disabled"
}

# The hash goes through chpasswd's stdin, never argv.
copy_rescue_root_password() {
  local hash
  hash="$(awk -F: '$1 == "root" { print $2 }' /etc/shadow)"
  [[ -n "$hash" ]] || die "step ${RUN_STEP}: expected a root password in the rescue's /etc/shadow (no SSH keys were given), found none"
  run chroot "$RUN_TARGET" chpasswd --encrypted < <(printf 'root:%s\n' "$hash")
  debug "no public keys: root gets the rescue system's root password"
}

set_permit_root_login() {
  local value="$1" config="${RUN_TARGET}/etc/ssh/sshd_config" line found=0
  local -a lines=()
  [[ -f "$config" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    if [[ "$line" =~ ^[[:space:]]*#?[[:space:]]*PermitRootLogin[[:space:]] ]]; then
      ((found)) && continue
      line="PermitRootLogin ${value}"
      found=1
    fi
    lines+=("$line")
  done <"$config"
  ((found)) || lines+=("PermitRootLogin ${value}")
  printf '%s\n' "${lines[@]}" >"$config"
}
