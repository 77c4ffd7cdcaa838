// TEMPORARY until the kernel (branch `kernel`) lands: the same shape as its RefusalError.
import { keepErrorMessage } from "../plumbing/errors";

export class RefusalError extends Error {
  readonly subject: string;
  constructor(subject: string, message: string) {
    super(message);
    this.name = "RefusalError";
    this.subject = subject;
    keepErrorMessage(this, message);
  }
}
