// Real-shaped probe output captured from the lab rescue (cryptsetup 2.6.1, util-linux 2.38.1):
// a LUKS2 container on /dev/nvme1n1p1 created by LuksVolume, open as "data", one crypttab line.
// Salts and digests are as cryptsetup prints them (they are not key material).
export const PROBE_OPEN_LUKS = {
  "exists": true,
  "size": 4294967296,
  "lsblk": {
    "blockdevices": [
      {
        "path": "/dev/nvme1n1",
        "type": "disk",
        "serial": "LAB100001N1",
        "wwn": "nvme.1b36-4c41423130303030314e31-51454d55204e564d65204374726c-00000001"
      },
      {
        "path": "/dev/nvme1n1p1",
        "type": "part",
        "serial": null,
        "wwn": "nvme.1b36-4c41423130303030314e31-51454d55204e564d65204374726c-00000001"
      }
    ]
  },
  "wipefs": {
    "signatures": [
      {
        "device": "nvme1n1p1",
        "offset": "0x0",
        "type": "crypto_LUKS",
        "uuid": "c6eb6ea1-c661-46b9-a740-e28d8c9a5756",
        "label": "lab-data"
      },
      {
        "device": "nvme1n1p1",
        "offset": "0x4000",
        "type": "crypto_LUKS",
        "uuid": "c6eb6ea1-c661-46b9-a740-e28d8c9a5756",
        "label": "lab-data"
      }
    ]
  },
  "blkid": "REVWTkFNRT0vZGV2L252bWUxbjFwMQpWRVJTSU9OPTIKVVVJRD1jNmViNmVhMS1jNjYxLTQ2YjktYTc0MC1lMjhkOGM5YTU3NTYKTEFCRUw9bGFiLWRhdGEKU1VCU1lTVEVNPWhldHpuZXItZmRlClRZUEU9Y3J5cHRvX0xVS1MKVVNBR0U9Y3J5cHRvClBBUlRfRU5UUllfU0NIRU1FPWdwdApQQVJUX0VOVFJZX1VVSUQ9ZjFlODkxMzUtYWEwOC0yMzQ1LWIxZjEtNjA2Y2E0NmM0MTJiClBBUlRfRU5UUllfVFlQRT0wZmM2M2RhZi04NDgzLTQ3NzItOGU3OS0zZDY5ZDg0NzdkZTQKUEFSVF9FTlRSWV9OVU1CRVI9MQpQQVJUX0VOVFJZX09GRlNFVD0yMDQ4ClBBUlRfRU5UUllfU0laRT04Mzg4NjA4ClBBUlRfRU5UUllfRElTSz0yNTk6MQo=",
  "luks": {
    "keyslots": {
      "0": {
        "type": "luks2",
        "key_size": 64,
        "af": {
          "type": "luks1",
          "stripes": 4000,
          "hash": "sha256"
        },
        "area": {
          "type": "raw",
          "offset": "32768",
          "size": "258048",
          "encryption": "aes-xts-plain64",
          "key_size": 64
        },
        "kdf": {
          "type": "argon2id",
          "time": 4,
          "memory": 32768,
          "cpus": 1,
          "salt": "fXUZjON9VHhGMyiJigKgCbLvj4u6ADpinSTrsa4xdw4="
        }
      }
    },
    "tokens": {},
    "segments": {
      "0": {
        "type": "crypt",
        "offset": "16777216",
        "size": "dynamic",
        "iv_tweak": "0",
        "encryption": "aes-xts-plain64",
        "sector_size": 512
      }
    },
    "digests": {
      "0": {
        "type": "pbkdf2",
        "keyslots": [
          "0"
        ],
        "segments": [
          "0"
        ],
        "hash": "sha256",
        "iterations": 1000,
        "salt": "PMdVprS4FWUC52fgRq6wNw6kELRd4beLTqs3RPpXjUI=",
        "digest": "BVn99snqAeyuyZN5G1jlDVlCDPwyTmUWyYhDuMVEGqA="
      }
    },
    "config": {
      "json_size": "12288",
      "keyslots_size": "16744448"
    }
  },
  "keys": [
    0,
    null
  ],
  "dm": "ZGF0YSBDUllQVC1MVUtTMi1jNmViNmVhMWM2NjE0NmI5YTc0MGUyOGQ4YzlhNTc1Ni1kYXRhCg==",
  "status": "L2Rldi9tYXBwZXIvZGF0YSBpcyBhY3RpdmUuCiAgdHlwZTogICAgTFVLUzIKICBjaXBoZXI6ICBhZXMteHRzLXBsYWluNjQKICBrZXlzaXplOiA1MTIgYml0cwogIGtleSBsb2NhdGlvbjoga2V5cmluZwogIGRldmljZTogIC9kZXYvbnZtZTFuMXAxCiAgc2VjdG9yIHNpemU6ICA1MTIKICBvZmZzZXQ6ICAzMjc2OCBzZWN0b3JzCiAgc2l6ZTogICAgODM1NTg0MCBzZWN0b3JzCiAgbW9kZTogICAgcmVhZC93cml0ZQo=",
  "crypttab": "IyA8dGFyZ2V0IG5hbWU+CTxzb3VyY2UgZGV2aWNlPgkJPGtleSBmaWxlPgk8b3B0aW9ucz4KZGF0YSBVVUlEPWM2ZWI2ZWExLWM2NjEtNDZiOS1hNzQwLWUyOGQ4YzlhNTc1NiBub25lIGx1a3MK",
  "job": {
    "running": false,
    "device": "",
    "rc": ""
  }
} as const;
