import type { ReactNode } from 'react';

export interface ChartSlot {
  local: string;
  forecast: number | null;
  actual: number | null;
}

const W = 960;
const H = 260;
const PAD = { left: 36, right: 12, top: 14, bottom: 28 };

/**
 * Today's arrivals per 15-minute slot: what happened (bars) against the forecast (a step line).
 * Our own small SVG — no chart library: a day is at most 100 slots, and presentation attributes
 * (not inline styles) keep it within the console's content security policy.
 */
export function ForecastChart(props: { slots: ChartSlot[]; label: string; nowIndex: number | null }): ReactNode {
  const { slots } = props;
  const top = Math.max(1, ...slots.map((s) => Math.max(s.forecast ?? 0, s.actual ?? 0)));
  const step = top <= 5 ? 1 : top <= 20 ? 5 : top <= 50 ? 10 : 20;
  const max = Math.ceil(top / step) * step;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slotW = plotW / Math.max(1, slots.length);
  const x = (i: number) => PAD.left + i * slotW;
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  const line: string[] = [];
  slots.forEach((s, i) => {
    if (s.forecast === null) return;
    const cmd = line.length === 0 || slots[i - 1]?.forecast === null ? 'M' : 'L';
    line.push(`${cmd}${x(i).toFixed(1)},${y(s.forecast).toFixed(1)}`, `L${x(i + 1).toFixed(1)},${y(s.forecast).toFixed(1)}`);
  });
  const ticks = Array.from({ length: max / step + 1 }, (_, k) => k * step);
  return (
    <figure className="forecast-chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.label} width="100%">
        {ticks.map((v) => (
          <g key={`y${v}`}>
            <line x1={PAD.left} x2={W - PAD.right} y1={y(v)} y2={y(v)} stroke="#e3e6ea" />
            <text x={PAD.left - 6} y={y(v) + 4} textAnchor="end" fontSize="11" fill="#5b6472">
              {v}
            </text>
          </g>
        ))}
        {slots.map((s, i) =>
          s.local.endsWith(':00') && Number(s.local.slice(0, 2)) % 3 === 0 ? (
            <text key={`x${i}`} x={x(i)} y={H - 8} textAnchor="middle" fontSize="11" fill="#5b6472">
              {s.local}
            </text>
          ) : null,
        )}
        {slots.map((s, i) =>
          s.actual ? <rect key={`a${i}`} x={x(i) + 1} y={y(s.actual)} width={Math.max(1, slotW - 2)} height={PAD.top + plotH - y(s.actual)} fill="#9db8ea"><title>{`${s.local}: ${s.actual} arrived`}</title></rect> : null,
        )}
        <path d={line.join(' ')} fill="none" stroke="#b45309" strokeWidth="2" />
        {props.nowIndex !== null && <line x1={x(props.nowIndex)} x2={x(props.nowIndex)} y1={PAD.top} y2={PAD.top + plotH} stroke="#111827" strokeDasharray="4 3" />}
      </svg>
      <figcaption className="muted">
        <span className="swatch swatch-actual" /> arrived (new machines taken) · <span className="swatch swatch-forecast" /> forecast at the pool&apos;s quantile · dashed: now
      </figcaption>
    </figure>
  );
}
