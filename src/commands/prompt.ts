import inquirer from 'inquirer';

/** The only place tiseal asks a person something. Callers check for a terminal first. */
export async function confirm(message: string): Promise<boolean> {
  const { ok } = await inquirer.prompt<{ ok: boolean }>([{ type: 'confirm', name: 'ok', message, default: false }]);
  return ok;
}
