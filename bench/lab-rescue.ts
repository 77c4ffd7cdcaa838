// The benches' one way onto a lab server: start the lab, boot its first server into rescue, run
// `fn` on a rescue session, stop the lab whatever happened.
import { SshSession } from "../providers/plumbing/ssh";
import { LabFixtureOptions, startLabFixture } from "../test/support/lab";

export async function inLabRescue<T>(options: LabFixtureOptions, fn: (session: SshSession) => Promise<T>): Promise<T> {
  const lab = await startLabFixture(options);
  const server = lab.server().number;
  try {
    const login = await lab.bootIntoRescue(server);
    return await lab.withRescue(server, fn, login);
  } finally {
    await lab.close();
  }
}
