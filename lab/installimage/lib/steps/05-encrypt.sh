# shellcheck shell=bash
# Step 5: LUKS on every PART marked crypt, with Hetzner's parameters. The password reaches
# cryptsetup on stdin only (a builtin printf in a process substitution: no argv, no file).

step_encrypt() {
  local i device name
  for i in "${!CFG_PART_MOUNT[@]}"; do
    [[ -n "${PLAN_PART_LUKS_UUID[$i]}" ]] || continue
    device="${PLAN_PART_MD[$i]:-${PLAN_PART_MEMBERS[$i]}}"
    name="luks-${PLAN_PART_LUKS_UUID[$i]}"
    run cryptsetup luksFormat --batch-mode --type luks2 --uuid "${PLAN_PART_LUKS_UUID[$i]}" \
      --cipher aes-xts-plain64 --key-size 256 --hash sha256 --iter-time 6000 \
      --key-file=- "$device" < <(printf '%s' "$CFG_CRYPTPASSWORD")
    run cryptsetup open --key-file=- "$device" "$name" < <(printf '%s' "$CFG_CRYPTPASSWORD")
    wait_for_block_device "/dev/mapper/${name}"
  done
}
