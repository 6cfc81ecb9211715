/// The page frame every template shares (mustache partials `header` and `footer`) and the
/// small style sheet: a navigation bar naming the tree's collections, a notice line for
/// the outcome of the last action, and the main column.
enum LayoutTemplates {
    static let header = """
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="csrf" content="{{csrf}}">
    <title>{{title}} · cloudfs</title>
    <link rel="stylesheet" href="/static/style.css">
    </head><body data-page="{{page}}">
    <nav><b>cloudfs</b>
    <a href="/">Overview</a><a href="/instances">Instances</a><a href="/launch">Launch</a><a href="/images">Images</a>
    {{#collections}}<a href="/c/{{slug}}">{{title}}</a>{{/collections}}<a href="/events">Events</a></nav>
    <main>
    {{#notice}}<div id="notice" class="notice {{level}}">{{text}}</div>{{/notice}}
    <div id="live-notice" class="notice bad" hidden></div>
    <h1>{{title}}</h1>
    """

    static let footer = """
    </main>
    <footer>the cloud mounted on <code>{{mount}}</code>, as uid {{uid}}</footer>
    <script src="/static/app.js"></script>
    </body></html>
    """

    static let style = """
    body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2327;background:#f6f7f7}
    nav{background:#23282d;padding:.5em 1em;display:flex;gap:1em;flex-wrap:wrap;align-items:center}
    nav a,nav b{color:#f0f0f1;text-decoration:none}nav a:hover{text-decoration:underline}
    footer{padding:.5em 1.5em;color:#646970;font-size:.85em}
    main{padding:1em 1.5em}h1{font-size:1.4em;margin:.2em 0 .6em}h2{font-size:1.1em;margin:1.2em 0 .4em}
    table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:1em}
    th,td{border-bottom:1px solid #dcdcde;padding:.35em .5em;text-align:left;vertical-align:top}
    th{background:#f0f0f1;font-weight:600}td.num{text-align:right}
    .status{font-weight:600;padding:0 .4em;border-radius:3px}.status.ok{color:#00692a;background:#e6f4ea}
    .status.bad{color:#b32d2e;background:#fbeaea}.status.busy{color:#8a5a00;background:#fcf3e0}
    .status.idle{color:#50575e;background:#eee}
    .notice{padding:.6em 1em;border-radius:4px;margin-bottom:1em}.notice.ok{background:#e6f4ea}
    .notice.bad{background:#fbeaea;color:#8a1f11}
    form.inline{display:inline}button{cursor:pointer;font-size:.85em;margin:1px}button.danger{color:#b32d2e}
    .bar{background:#e0e0e0;border-radius:3px;height:.9em;width:14em;display:inline-block;vertical-align:middle}
    .bar span{display:block;height:100%;border-radius:3px;background:#2271b1}.bar .warn{background:#dba617}
    .bar .bad{background:#d63638}.cards{display:flex;flex-wrap:wrap;gap:1em}
    .card{background:#fff;border:1px solid #dcdcde;border-radius:4px;padding:.6em 1em;min-width:22em}
    .card td{border:0;padding:.15em .4em}pre{background:#1d2327;color:#f0f0f1;padding:.6em;overflow:auto;max-height:30em}
    .muted{color:#646970}label{display:block;margin:.4em 0}input,select,textarea{font:inherit}
    textarea{width:40em;max-width:100%;height:6em}.events li{font-family:monospace;white-space:pre-wrap}
    ul.events{list-style:none;padding:0;background:#fff;border:1px solid #dcdcde;max-height:40em;overflow:auto}
    ul.events li{padding:.15em .5em;border-bottom:1px solid #f0f0f1}
    """
}
