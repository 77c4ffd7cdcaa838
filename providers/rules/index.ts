// Pure, dependency-light validation rules shared by the stack config (infra/config.ts) and the
// resources' `check` methods. No zod here: each rule takes plain values and returns reasons.
export * from "./issue";
export * from "./size";
export * from "./passphrase";
export * from "./luks";
export * from "./device";
export * from "./network";
export * from "./cron";
export * from "./image";
export * from "./layout";
export * from "./ssh-key";
export * from "./robot";
export * from "./mount";
