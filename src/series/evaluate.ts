/**
 * Event-based evaluation of series detection against a list of labelled events (an incident log,
 * a change calendar): per event, was there an alarm close to it (hit) or not (miss), and how many
 * alarms came with no event near them (false alarms).
 *
 * Alarms are episodes: runs of consecutive anomalous points of one series. Operators see an
 * incident, not 40 series flagging it, so episodes are also merged across series: alarms whose
 * starts lie within `mergeMs` of each other form one incident. An alarm (or incident) is a hit for
 * every event with event − before ≤ start ≤ event + after; the others are false alarms.
 */

export interface LabelledEvent {
  t: number;
  name: string;
}

export interface Alarm {
  /** Start of the episode (ms). */
  t: number;
  series: string;
  score: number;
}

export interface EventOutcome {
  event: LabelledEvent;
  hit: boolean;
  /** Delay from the event to the first alarm in its window (ms), when hit. */
  delay: number | null;
  /** Series that alarmed within the window (at most 10 names). */
  series: string[];
}

export interface EventReport {
  events: EventOutcome[];
  hits: number;
  /** Alarms (per series) not near any event. */
  falseAlarms: number;
  alarms: number;
  /** Incidents (alarms merged across series) and how many of them are near no event. */
  incidents: number;
  falseIncidents: number;
}

export function evaluateEvents(
  alarms: Alarm[],
  events: LabelledEvent[],
  window: { before: number; after: number; mergeMs: number },
): EventReport {
  const sorted = [...alarms].sort((a, b) => a.t - b.t);
  const near = (t: number) => events.some((e) => t >= e.t - window.before && t <= e.t + window.after);
  const outcomes: EventOutcome[] = events.map((e) => {
    const inWin = sorted.filter((a) => a.t >= e.t - window.before && a.t <= e.t + window.after);
    return {
      event: e,
      hit: inWin.length > 0,
      delay: inWin.length ? inWin[0].t - e.t : null,
      series: [...new Set(inWin.map((a) => a.series))].slice(0, 10),
    };
  });
  let falseAlarms = 0;
  for (const a of sorted) if (!near(a.t)) falseAlarms++;
  let incidents = 0;
  let falseIncidents = 0;
  let lastStart = Number.NEGATIVE_INFINITY;
  let incidentNear = false;
  for (const a of sorted) {
    if (a.t - lastStart > window.mergeMs) {
      if (incidents && !incidentNear) falseIncidents++;
      incidents++;
      lastStart = a.t;
      incidentNear = false;
    }
    if (near(a.t)) incidentNear = true;
  }
  if (incidents && !incidentNear) falseIncidents++;
  return {
    events: outcomes,
    hits: outcomes.filter((o) => o.hit).length,
    falseAlarms,
    alarms: sorted.length,
    incidents,
    falseIncidents,
  };
}
