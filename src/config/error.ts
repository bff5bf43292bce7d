/** The one error the config boundary throws: names the key path, fits on one line. */
export class ConfigError extends Error {
  /**
   * @param path   key path such as `dhcp.subnets[1].pool`; '' for the file as a whole
   * @param reason what is wrong, without the path
   * @param line   1-based line in the file, when known (YAML syntax errors)
   */
  constructor(readonly path: string, readonly reason: string, readonly line?: number) {
    // One line, always: the message goes to the journal and to a terminal.
    super(`config: ${path ? `${path}: ` : ''}${reason}`.replace(/\s*[\r\n]+\s*/g, ' '));
    this.name = 'ConfigError';
  }
}
