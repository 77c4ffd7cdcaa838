// LvmGroup's steps: the only effects. Each is guarded on the host, so a re-run after a kill converges.
import { sh } from "../plumbing/shell";
import { EXTENT_SIZE_BYTES } from "../storage/lvm";
import { MIB } from "../rules/size";
import { LvmContext, LvmGroupStep, OWNER_TAG } from "./types";

const lvPath = (step: { vgName: string; lv: string }) => `/dev/${step.vgName}/${step.lv}`;

async function wipeSignatures(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "wipeSignatures" }>): Promise<void> {
  // Re-checked right before acting: never wipe a PV of some VG, nor a device in use.
  await ctx.session.exec(sh`d=${step.device}
if pvs "$d" >/dev/null 2>&1; then echo "$d became an LVM PV since the probe; not wiping it" >&2; exit 3; fi
if findmnt -S "$d" >/dev/null 2>&1; then echo "$d is mounted; not wiping it" >&2; exit 3; fi
wipefs -a "$d"`);
}

async function pvcreate(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "pvcreate" }>): Promise<void> {
  // No -y/-ff: pvcreate itself refuses a device with a signature it would destroy.
  await ctx.session.exec(sh`pvs ${step.device} >/dev/null 2>&1 || pvcreate ${step.device}`);
}

async function vgcreate(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "vgcreate" }>): Promise<void> {
  // The owner tag is set in the same command, so no VG of ours ever exists untagged.
  await ctx.session.exec(sh`vgs ${step.vgName} >/dev/null 2>&1 || vgcreate --addtag ${OWNER_TAG} -s ${`${EXTENT_SIZE_BYTES / MIB}m`} ${step.vgName} ${step.devices}`);
}

async function vgextend(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "vgextend" }>): Promise<void> {
  await ctx.session.exec(sh`vgextend ${step.vgName} ${step.devices}`);
}

async function adoptVg(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "adoptVg" }>): Promise<void> {
  await ctx.session.exec(sh`vgchange --addtag ${OWNER_TAG} ${step.vgName}`);
}

async function activate(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "activate" }>): Promise<void> {
  await ctx.session.exec(sh`vgchange -ay ${step.vgName}`);
}

async function lvcreate(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "lvcreate" }>): Promise<void> {
  // --wipesignatures: extents freed by an old LV may still hold its filesystem's signature, and the
  // mkfs guard would then take that stale filesystem for ours.
  await ctx.session.exec(
    sh`lvs ${`${step.vgName}/${step.lv}`} >/dev/null 2>&1 || lvcreate --yes --wipesignatures y --zero y -n ${step.lv} -l ${step.extents} ${step.vgName}`,
  );
}

async function lvextend(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "lvextend" }>): Promise<void> {
  const bytes = step.extents * step.extentSizeBytes;
  const name = `${step.vgName}/${step.lv}`;
  await ctx.session.exec(sh`test "$(lvs --noheadings --units b --nosuffix -o lv_size ${name} | tr -d ' ')" -ge ${bytes} || lvextend -l ${step.extents} ${name}`);
}

async function growFilesystem(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "growFilesystem" }>): Promise<void> {
  const dev = lvPath(step);
  switch (step.filesystem) {
    case "ext4":
      // Online when mounted; offline resize2fs insists on a fresh fsck first.
      await ctx.session.exec(sh`d=${dev}
if findmnt -S "$d" >/dev/null 2>&1; then resize2fs "$d"; else e2fsck -f -p "$d"; rc=$?; [ "$rc" -le 1 ] || exit "$rc"; resize2fs "$d"; fi`);
      return;
    case "xfs":
      // xfs_growfs works only on a mounted filesystem: mount it on a private temporary directory if need be.
      await ctx.session.exec(sh`d=${dev}
m=$(findmnt -n -o TARGET -S "$d" | head -n1)
if [ -n "$m" ]; then xfs_growfs "$m"; exit $?; fi
t=$(mktemp -d) && mount -t xfs "$d" "$t" || exit 1
xfs_growfs "$t"; rc=$?; umount "$t"; rmdir "$t"; exit "$rc"`);
      return;
    case "swap":
      // mkswap again over the larger LV, keeping the UUID so resume= and fstab still match.
      await ctx.session.exec(sh`d=${dev}
u=$(blkid -p -s UUID -o value "$d")
on=0; if grep -q "^$(readlink -f "$d") " /proc/swaps; then on=1; swapoff "$d" || exit 1; fi
mkswap \${u:+-U "$u"} "$d" >/dev/null; rc=$?
[ "$on" = 1 ] && swapon "$d"; exit "$rc"`);
      return;
  }
}

async function mkfs(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "mkfs" }>): Promise<void> {
  const make = { ext4: sh`mkfs.ext4 -q "$d"`, xfs: sh`mkfs.xfs -q "$d"`, swap: sh`mkswap "$d" >/dev/null` }[step.filesystem];
  // Guarded on the host: the filesystem asked for is already there → nothing to do; another one → only with wipe.
  await ctx.session.exec(sh`d=${lvPath(step)}
t=$(blkid -p -s TYPE -o value "$d" 2>/dev/null)
if [ "$t" = ${step.filesystem} ]; then exit 0; fi
if [ -n "$t" ]; then
  if [ ${step.wipe ? "yes" : "no"} != yes ]; then echo "$d carries $t, not ${step.filesystem}; not formatting it without allowWipe" >&2; exit 3; fi
  if findmnt -S "$d" >/dev/null 2>&1; then echo "$d is mounted; unmount it first" >&2; exit 3; fi
  wipefs -a "$d" >/dev/null || exit 1
fi
${make}`);
}

async function lvremove(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "lvremove" }>): Promise<void> {
  await ctx.session.exec(sh`d=${lvPath(step)}
lvs ${`${step.vgName}/${step.lv}`} >/dev/null 2>&1 || exit 0
if findmnt -S "$d" >/dev/null 2>&1; then echo "$d is mounted; unmount it first" >&2; exit 3; fi
if grep -q "^$(readlink -f "$d") " /proc/swaps 2>/dev/null; then echo "$d is an active swap; swapoff it first" >&2; exit 3; fi
lvremove --yes ${`${step.vgName}/${step.lv}`}`);
}

async function writeFstab(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "writeFstab" }>): Promise<void> {
  // Only over the text the plan was made from: an fstab edited since then is not overwritten.
  const file = `${step.root.replace(/\/$/, "")}/etc/fstab`;
  await ctx.session.exec(
    sh`f=${file}
cur=$(cat "$f" 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$cur" = ${step.expectedSha256} ] || { echo "$f changed since it was read; run again" >&2; exit 3; }
cat > "$f.hfde-tmp" && chmod 644 "$f.hfde-tmp" && mv "$f.hfde-tmp" "$f"`,
    { stdin: step.text },
  );
}

async function vgremove(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "vgremove" }>): Promise<void> {
  await ctx.session.exec(sh`vgs ${step.vgName} >/dev/null 2>&1 || exit 0; vgremove --yes ${step.vgName}`);
}

async function pvremove(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "pvremove" }>): Promise<void> {
  await ctx.session.exec(sh`pvs ${step.device} >/dev/null 2>&1 || exit 0; pvremove --yes ${step.device}`);
}

export const steps = {
  wipeSignatures,
  pvcreate,
  vgcreate,
  vgextend,
  adoptVg,
  activate,
  lvcreate,
  lvextend,
  growFilesystem,
  mkfs,
  lvremove,
  writeFstab,
  vgremove,
  pvremove,
};
