import { utils as ssh2Utils } from "ssh2";

const GENERATE = "generate one with `ssh-keygen -t ed25519 -N '' -f hetzner-fde` and store it with `pulumi config set --secret sshPrivateKey < hetzner-fde`";

/**
 * Why `text` is not a usable SSH private key, or undefined when it is. Never quotes the key: the
 * reasons come from the key's shape, not its content.
 */
export function checkSshPrivateKey(text: string): string | undefined {
  if (text.trim() === "") return `is empty: ${GENERATE}`;
  if (/^(ssh-|ecdsa-|sk-)/.test(text.trim())) return `holds a public key; the private half is needed: ${GENERATE}`;
  const parsed = ssh2Utils.parseKey(text);
  if (parsed instanceof Error) {
    if (/passphrase/i.test(parsed.message)) {
      return "is protected by a passphrase, which an unattended `pulumi up` cannot type: use a dedicated key without one (`ssh-keygen -p -N ''` removes it from a copy)";
    }
    return `is not an OpenSSH or PEM private key (ssh2 says: ${parsed.message.replace(/[A-Za-z0-9+/=]{16,}/g, "…")}): ${GENERATE}`;
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key.isPrivateKey()) return `holds a public key; the private half is needed: ${GENERATE}`;
  return undefined;
}
