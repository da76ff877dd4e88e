/**
 * Completions released in the order they were opened. A client's publishes are handled
 * concurrently (Aedes hands every packet of a socket read to `authorizePublish` at once) and their
 * commits may finish in any order, but MQTT wants the PUBACKs in the order of the PUBLISHes
 * [MQTT-4.6.0-2]: a device that frees its send buffer oldest-first on each PUBACK would otherwise
 * free a reading that is not stored yet. Each publish takes a ticket; its outcome waits until
 * every earlier ticket has one.
 *
 * Arrays and numbers rather than an object per publish: this sits on the hot path.
 */
export type Completion = (err: Error | null) => void;

export class InOrder {
  /** Ticket number of `dones[0]`. */
  private base = 0;
  private head = 0;
  private readonly dones: Completion[] = [];
  /** undefined: not settled yet. */
  private readonly outcomes: (Error | null | undefined)[] = [];

  /** A ticket for the next completion; settle it exactly once. */
  open(done: Completion): number {
    this.dones.push(done);
    this.outcomes.push(undefined);
    return this.base + this.dones.length - 1;
  }

  settle(ticket: number, err: Error | null): void {
    const at = ticket - this.base;
    if (at < this.head || at >= this.dones.length || this.outcomes[at] !== undefined)
      throw new Error(`ticket ${ticket} settled twice or never opened`);
    this.outcomes[at] = err;
    if (at !== this.head) return; // an earlier one is still out: it releases this one
    // A completion may open or settle tickets before it returns (Aedes parses the next packets
    // inside it): those see `head` already moved past it, so each is released exactly once.
    while (this.head < this.dones.length && this.outcomes[this.head] !== undefined) {
      const i = this.head++;
      const done = this.dones[i]!;
      const outcome = this.outcomes[i]!;
      this.dones[i] = noop; // let the closure go
      done(outcome);
    }
    if (this.head === this.dones.length) {
      this.base += this.head;
      this.head = 0;
      this.dones.length = 0;
      this.outcomes.length = 0;
    }
  }

  /** Tickets opened and not yet released. */
  get waiting(): number {
    return this.dones.length - this.head;
  }
}

const noop: Completion = () => undefined;
