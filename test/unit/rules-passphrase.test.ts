import { passphraseWeaknesses } from "../../providers/rules";

describe("passphraseWeaknesses", () => {
  it.each([
    "correct horse battery staple", // long, one class: length carries it
    "Zugspitze-Morgenrot-1962!",
    "Kx9#mP2$vL7!qR4z", // 16, four classes
    "violet-Harbor-47-kettle-lab1",
    "Tr0ub4dor&3xyzQW",
    "ünïcödé-Pässwörd-Straße-42", // non-ASCII letters count as letters
  ])("accepts %j", (passphrase) => {
    expect(passphraseWeaknesses(passphrase)).toEqual([]);
  });

  it.each([
    ["", /^is empty$/],
    ["Kx9#mP2$vL7!", /is 12 characters long \(at least 16 needed\)/],
    ["alllowercaseletters", /uses 1 of the 4 character classes/],
    ["aaaaaaaaaaaaaaaaaaaaaaaaa", /has only 1 distinct character/],
    ["Abc1!Abc1!Abc1!Abc1!Abc1!", /is one block of 5 characters repeated/],
    ["Password123456!!", /built from common passwords, keyboard rows or sequences/],
    ["P@ssw0rdP@ssw0rd1", /built from common passwords/],
    ["1234567890123456Aa!", /built from common passwords, keyboard rows or sequences/],
    ["Qwertzuiop-Asdfghjkl-99", /keyboard rows/],
    ["abcdefghijklmnopqrstuvwxyz", /sequences/],
    ["Line-One-Passphrase\nTwo", /contains a line break/],
    // NUL separates the two keys on luksAddKey's stdin: only the part before it would be enrolled.
    ["Tr0ub4dor-Kx9#mP2\u0000vL7!-Horse", /contains 1 control character \(such as NUL or tab\).*printable characters only/],
    ["Tr0ub4dor-Kx9#mP2\tvL7!-Horse\u001b", /contains 2 control characters/],
    ["Tr0ub4dor-Kx9#mP2\u007fvL7!-Horse", /control character/],
    ["Aa1!".repeat(10) + "x".repeat(480), /at most 512/],
  ])("refuses %j", (passphrase, reason) => {
    expect(passphraseWeaknesses(passphrase)).toEqual(expect.arrayContaining([expect.stringMatching(reason)]));
  });

  it("never quotes the passphrase in a reason", () => {
    for (const passphrase of ["Password123456!!", "Kx9#mP2$", "abcabcabcabcabcabc", "qwertyuiop123"]) {
      for (const reason of passphraseWeaknesses(passphrase)) expect(reason).not.toContain(passphrase);
    }
  });
});
