# shellcheck shell=bash
# Step 16: leave the config and the log in the new system, resume the RAID resync and unmount.
# Arrays, LUKS mappings and LVs stay active, as after Hetzner's installimage.

step_finish() {
  rm -f "${RUN_TARGET}/usr/sbin/policy-rc.d"
  # /installimage.conf is the config used, CRYPTPASSWORD included, exactly as Hetzner leaves it;
  # hetzner-fde's InstallImage resource scrubs it (and /autosetup) and rotates the passphrase.
  install -m 600 -- "$AUTOSETUP_FILE" "${RUN_TARGET}/installimage.conf"
  debug "writing /installimage.debug"
  install -m 600 -- "$DEBUG_FILE" "${RUN_TARGET}/installimage.debug"
  unmount_below "$RUN_TARGET"
  resume_resync
  sync
}
