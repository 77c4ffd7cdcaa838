import { sh } from "../../providers/plumbing/shell";
import { ProbeOutputError, RemoteCommandError, SshSession, connect, probe } from "../../providers/plumbing/ssh";
import { createLogger, memorySink } from "../../providers/plumbing/log";
import { SshdFixture, fixtureTarget, startSshd } from "../support/sshd";

let sshd: SshdFixture;
let session: SshSession;

beforeAll(async () => {
  sshd = await startSshd();
  session = await connect(fixtureTarget(sshd), { logger: createLogger({ sink: memorySink().sink }) });
});

afterAll(async () => {
  await session?.close();
  await sshd?.dispose();
});

interface Facts {
  readonly user: string;
  readonly devices: string[];
}

function parseFacts(json: unknown): Facts {
  const value = json as Partial<Facts>;
  if (typeof value?.user !== "string" || !Array.isArray(value.devices)) {
    throw new Error(`expected { user: string, devices: string[] }, found ${JSON.stringify(json)}`);
  }
  return { user: value.user, devices: value.devices };
}

describe("probe", () => {
  it("parses the JSON the script prints into typed facts", async () => {
    const facts = await probe(session, sh`printf '{"user":"%s","devices":["/dev/md0","/dev/md1"]}' "$(id -un)"`, parseFacts);
    expect(facts).toEqual({ user: sshd.user, devices: ["/dev/md0", "/dev/md1"] });
  });

  it("says clearly when the output is not JSON and shows its head", async () => {
    const error = await probe(session, sh`echo ${"Welcome to rescue"}; echo '{"user":'`, parseFacts).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProbeOutputError);
    expect((error as Error).message).toMatch(
      new RegExp(`^probe \`echo 'Welcome to rescue'; echo '\\{"user":'\` on 127\\.0\\.0\\.1:\\d+ printed output that is not JSON \\(.+\\); it began with: "Welcome to rescue\\\\n`),
    );
  });

  it("says when the script printed nothing", async () => {
    await expect(probe(session, sh`true`, parseFacts)).rejects.toThrow(/printed nothing$/);
  });

  it("says when the JSON has an unexpected shape, with the parser's reason", async () => {
    await expect(probe(session, sh`echo '{"user":1}'`, parseFacts)).rejects.toThrow(/printed JSON of an unexpected shape: expected \{ user: string/);
  });

  it("lets a failing script fail as a RemoteCommandError", async () => {
    await expect(probe(session, sh`echo nope >&2; exit 4`, parseFacts)).rejects.toBeInstanceOf(RemoteCommandError);
  });
});
