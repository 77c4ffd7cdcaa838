// A lab server as lab/lab.config.json's first entry parses (two NVMe disks, BIOS), for the unit
// tests of the pure lab modules.

import type { LabServerConfig } from "../../lab/config";

export const LAB_SERVER: LabServerConfig = {
  number: 100001,
  name: "lab-1",
  sshPort: 2201,
  dropbearPort: 2221,
  memoryMiB: 2048,
  cpus: 1,
  disks: { count: 2, sizeGiB: 20, type: "nvme" },
  firmware: "bios",
};
