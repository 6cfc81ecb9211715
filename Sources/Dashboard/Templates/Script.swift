/// The dashboard's only script: live rows, events and console from server-sent events
/// (fed by `/events` and the console log), and the streamed image upload. Everything else
/// is plain HTML forms.
enum Script {
    static let app = #"""
    (function () {
      const csrf = document.querySelector('meta[name=csrf]').content;
      const page = document.body.dataset.page;
      // Event streams end with the page, so leaving it never waits on an open stream.
      const sources = [];
      window.addEventListener('pagehide', () => { for (const s of sources) s.close(); });
      function problem(text) {
        const n = document.getElementById('live-notice');
        n.textContent = text; n.hidden = false;
      }
      // Instances: a row changes when /events says something happened to its instance.
      const table = document.getElementById('instances');
      const pending = {};
      function refreshRow(name) {
        pending[name] = (pending[name] || Promise.resolve()).then(async () => {
          const r = await fetch('/instances/' + encodeURIComponent(name) + '/row');
          const old = document.getElementById('row-' + name);
          if (r.status === 404) {
            if (old && page === 'instances') old.remove();
            else if (old) old.querySelector('.status').textContent = 'DELETED';
            return;
          }
          if (!r.ok) return;
          const holder = document.createElement('tbody');
          holder.innerHTML = (await r.text()).trim();
          const row = holder.firstElementChild;
          const seen = old ? (old.dataset.seen || old.dataset.status) : '';
          const last = seen.split(' ').pop();
          row.dataset.seen = !seen ? row.dataset.status : (last === row.dataset.status ? seen : seen + ' ' + row.dataset.status);
          if (old) old.replaceWith(row); else if (page === 'instances') table.tBodies[0].appendChild(row);
        }).catch(() => {});
      }
      if (table) {
        for (const row of table.querySelectorAll('tr[data-name]')) row.dataset.seen = row.dataset.status;
      }
      const list = document.getElementById('events');
      const filter = document.getElementById('filter');
      function matches(li) { return !filter || !filter.value || li.textContent.includes(filter.value); }
      if (filter) filter.addEventListener('input', () => {
        for (const li of list.children) li.hidden = !matches(li);
      });
      if (table || list) {
        const es = new EventSource('/sse/events');
        sources.push(es);
        // Whatever changed between rendering the page and subscribing: refresh the rows
        // that were in a transition (also after a reconnect).
        es.onopen = () => {
          if (table) for (const row of table.querySelectorAll('tr.transitional')) refreshRow(row.dataset.name);
        };
        es.onmessage = (ev) => {
          const parts = ev.data.split(' ');
          const kind = parts[1] || '', object = parts[2] || '';
          if (table && kind.startsWith('instance.') && (page === 'instances' || document.getElementById('row-' + object))) refreshRow(object);
          if (list && (list.dataset.live === 'all' || list.dataset.object === object)) {
            const li = document.createElement('li');
            li.textContent = ev.data;
            li.hidden = !matches(li);
            if (list.dataset.live === 'all') list.prepend(li); else list.append(li);
          }
        };
      }
      // Instance detail: the console log, followed.
      const consoleLog = document.getElementById('console');
      if (consoleLog && consoleLog.dataset.follow) {
        const cs = new EventSource(consoleLog.dataset.follow);
        sources.push(cs);
        cs.onmessage = (ev) => { consoleLog.textContent += ev.data + '\n'; consoleLog.scrollTop = consoleLog.scrollHeight; };
      }
      // Images: the file is streamed to the server, which streams it into /images/NAME.
      const upload = document.getElementById('upload');
      if (upload) upload.addEventListener('submit', async (e) => {
        e.preventDefault();
        const file = document.getElementById('upload-file').files[0];
        const name = document.getElementById('upload-name').value.trim() || (file && file.name);
        if (!file || !name) { problem('choose a file and a name'); return; }
        const progress = document.getElementById('upload-progress');
        progress.textContent = 'uploading ' + file.size + ' bytes…';
        const r = await fetch('/images/upload/' + encodeURIComponent(name), {
          method: 'PUT', body: file, headers: {'X-CSRF-Token': csrf, 'Content-Type': 'application/octet-stream'}});
        const text = await r.text();
        progress.textContent = '';
        if (r.ok) location.href = '/images?level=ok&notice=' + encodeURIComponent(text);
        else problem(text);
      });
    })();
    """#
}
