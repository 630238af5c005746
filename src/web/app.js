// The search page's behaviour: plain browser JS (no framework, no build step), talking to the same API a
// client would (/health, /search, /thumb). Results render with textContent only: paths come from the index
// and must never be interpreted as HTML.
const $ = (id) => document.getElementById(id);

const status = (text, isError = false) => {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : 'muted';
};

function busy(on) {
  for (const id of ['search-btn', 'image-btn']) $(id).disabled = on;
}

function kValue() {
  const k = Number($('k').value);
  return Number.isInteger(k) && k >= 1 && k <= 200 ? k : 12;
}

/** POST and parse; the API answers `{ error }` with a 4xx/5xx, shown as is. */
async function post(url, body, contentType) {
  const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': contentType } });
  const data = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(data.error ?? `HTTP ${res.status}`);
  return data;
}

function basename(p) {
  return p.split(/[\\/]/).pop();
}

function render(data) {
  const list = $('results');
  list.replaceChildren();
  data.results.forEach((r, i) => {
    const li = document.createElement('li');
    li.className = 'result';
    li.dataset.id = r.id;
    li.dataset.path = r.path;
    li.dataset.score = String(r.score);

    const frame = document.createElement('div');
    frame.className = 'thumb';
    const img = document.createElement('img');
    img.src = r.thumb;
    img.alt = basename(r.path);
    img.loading = 'lazy';
    frame.append(img);

    const meta = document.createElement('div');
    meta.className = 'meta';
    const rank = document.createElement('span');
    rank.className = 'rank';
    rank.textContent = `#${i + 1}`;
    const score = document.createElement('span');
    score.className = 'score';
    score.textContent = r.score.toFixed(4);
    const path = document.createElement('div');
    path.className = 'path';
    path.textContent = r.path;
    path.title = `${r.path} (${r.width}×${r.height})`;
    meta.append(rank, score, path);

    li.append(frame, meta);
    list.append(li);
  });
}

async function run(label, request) {
  busy(true);
  status(`searching ${label}…`);
  const t0 = performance.now();
  try {
    const data = await request();
    render(data);
    status(`${data.results.length} results for ${label} in ${Math.round(performance.now() - t0)} ms`);
  } catch (e) {
    $('results').replaceChildren();
    status(e.message, true);
  } finally {
    busy(false);
  }
}

$('text-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const query = $('query').value.trim();
  if (!query) return status('type a query first', true);
  void run(query, () => post('/search', JSON.stringify({ query, k: kValue() }), 'application/json'));
});

$('image-file').addEventListener('change', () => {
  const file = $('image-file').files[0];
  const preview = $('query-preview');
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.hidden = !file;
  if (file) preview.src = URL.createObjectURL(file);
});

$('image-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const file = $('image-file').files[0];
  if (!file) return status('choose an image first', true);
  // Raw bytes, not base64: a third smaller and no encoding work in the page.
  const type = ['image/jpeg', 'image/png', 'image/webp'].includes(file.type) ? file.type : 'application/octet-stream';
  void run(`image ${file.name}`, () => post(`/search?k=${kValue()}`, file, type));
});

async function showInfo() {
  try {
    const h = await (await fetch('/health')).json();
    const model = h.model.name ? `${h.model.name} (${h.model.dim}-d)` : `${h.model.dim}-d model`;
    const index = h.index ? `${h.index.count} images indexed` : 'no index loaded (start with --db)';
    $('info').textContent = `${model} · ${index}`;
  } catch {
    $('info').textContent = 'server unreachable';
  }
}
void showInfo();
