/// The instances table (Horizon's Instances panel), its row (also served alone, for the
/// live refresh), and the instance detail page.
enum InstanceTemplates {
    static let row = """
    <tr id="row-{{name}}" data-name="{{name}}" data-status="{{status}}"{{#transitional}} class="transitional"{{/transitional}}>
    <td><a href="/instances/{{name}}">{{name}}</a></td><td>{{image}}</td><td>{{ip}}</td><td>{{flavor}}</td><td>{{keyName}}</td>
    <td><span class="status {{statusClass}}">{{status}}</span>{{#fault}}<div class="muted" title="{{fault}}">fault</div>{{/fault}}</td>
    <td>{{task}}</td><td>{{power}}</td><td>{{host}}</td><td title="{{created}}">{{age}}</td><td>{{locked}}</td>
    <td class="actions"><form class="inline" method="post" action="/instances/{{name}}/action?csrf={{csrf}}">{{#actions}}<button name="verb" value="{{verb}}" data-verb="{{verb}}"{{#danger}} class="danger"{{/danger}}>{{label}}</button>{{/actions}}<button name="verb" value="delete" data-verb="delete" class="danger">delete</button></form>
    {{#canResize}}<form class="inline" method="post" action="/instances/{{name}}/resize?csrf={{csrf}}"><select name="flavor" aria-label="new flavor">{{#flavors}}<option>{{.}}</option>{{/flavors}}</select><button data-verb="resize">resize</button></form>{{/canResize}}</td>
    </tr>
    """

    static let list = """
    {{> header}}
    <p class="muted">{{count}} instances · each row is <code>instances/NAME/info.json</code>; rows change as <code>/events</code> reports them.
    <a href="/launch">Launch instance</a></p>
    <table id="instances"><thead><tr><th>Name</th><th>Image</th><th>IP address</th><th>Flavor</th><th>Key pair</th><th>Status</th>
    <th>Task</th><th>Power state</th><th>Host</th><th>Age</th><th>Lock</th><th>Actions</th></tr></thead>
    <tbody>{{#rows}}{{> row}}{{/rows}}</tbody></table>
    {{> footer}}
    """

    static let detail = """
    {{> header}}
    {{#row}}<table id="instances"><tbody>{{> row}}</tbody></table>{{/row}}
    <div class="cards">
    <div class="card"><h2>Overview</h2><table id="fields">{{#fields}}<tr><th>{{key}}</th><td data-field="{{key}}">{{value}}</td></tr>{{/fields}}</table></div>
    <div class="card"><h2>Volumes</h2><table>{{#volumes}}<tr><th>{{key}}</th><td><a href="/c/volumes">{{value}}</a></td></tr>{{/volumes}}</table>
    {{^volumes}}<p class="muted">none attached</p>{{/volumes}}
    {{#decision}}<h2>Scheduler's decision</h2><pre>{{decision}}</pre>{{/decision}}</div>
    </div>
    <h2>Console log</h2><pre id="console" data-follow="/sse/console/{{name}}">{{console}}</pre>
    <h2>Action log</h2><table><tbody>{{#actionLog}}<tr><td>{{.}}</td></tr>{{/actionLog}}</tbody></table>
    <h2>Events</h2><ul class="events" id="events" data-object="{{name}}">{{#events}}<li>{{.}}</li>{{/events}}</ul>
    {{> footer}}
    """
}
