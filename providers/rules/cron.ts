// Mirror schedules are written into a crontab, so they must be the 5-field form cron reads (or one of
// its @ macros); cron-parser checks the field ranges. A 6-field (seconds) form parses in
// cron-parser but not in cron, so the field count is checked first.
import { CronExpressionParser } from "cron-parser";

const MACROS = ["@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"];

export function checkCronSchedule(expression: string): string | undefined {
  const text = expression.trim();
  const example = `e.g. "*/15 * * * *", every 15 minutes as the CAcert MIRROR ran`;
  if (text.startsWith("@")) {
    if (MACROS.includes(text)) return undefined;
    return `expected a 5-field cron expression or one of ${MACROS.join(", ")}, found "${expression}" (${example})`;
  }
  const fields = text.split(/\s+/).filter((f) => f !== "");
  if (fields.length !== 5) {
    return `expected a 5-field cron expression (minute hour day-of-month month day-of-week), found ${fields.length} field(s) in "${expression}" (${example})`;
  }
  try {
    CronExpressionParser.parse(text);
  } catch (error) {
    return `expected a valid cron expression, found "${expression}": ${(error as Error).message} (${example})`;
  }
  return undefined;
}
