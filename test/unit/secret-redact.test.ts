// redact(): a long secret wherever it occurs; a short one (under SHORT_SECRET_LENGTH) only where
// it stands as a whole token, so ordinary words that contain its letters stay readable.
import { SHORT_SECRET_LENGTH, Secret, redact } from "../../providers/plumbing/secret";

describe("redact", () => {
  it("replaces a long secret everywhere, also inside words", () => {
    expect(redact("pw=hunter2-long;xhunter2-longx", [new Secret("hunter2-long")])).toBe("pw=[secret];x[secret]x");
  });

  it("redacts a short password (under 6 characters) where it stands on its own", () => {
    expect(SHORT_SECRET_LENGTH).toBe(6);
    const text = 'login failed for "pw1": password pw1 rejected (pw1)';
    expect(redact(text, [new Secret("pw1")])).toBe('login failed for "[secret]": password [secret] rejected ([secret])');
  });

  it("leaves ordinary words that merely contain a short secret's letters alone", () => {
    expect(redact("password is unchanged; pass the test", [new Secret("pass")])).toBe("password is unchanged; [secret] the test");
    expect(redact("Unauthorized", ["a"])).toBe("Unauthorized");
  });

  it("treats regex characters in a short secret literally", () => {
    expect(redact("got a.b* and axb", ["a.b*"])).toBe("got [secret] and axb");
  });

  it("redacts the longer secret first, so a short one inside it does not split it", () => {
    expect(redact("key abc-long-secret and abc", ["abc", "abc-long-secret"])).toBe("key [secret] and [secret]");
  });
});
