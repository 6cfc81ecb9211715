/// The overview, launch form, collection tables, images, events and error pages.
enum PageTemplates {
    static let overview = """
    {{> header}}
    <p class="muted">{{instanceCount}} instances visible to you.</p>
    <h2>Quota and usage</h2><div class="cards">
    {{#projects}}<div class="card project" data-project="{{name}}"><b>{{name}}</b><table>
    {{#bars}}<tr data-quota="{{label}}"><td>{{label}}</td><td><span class="bar"><span class="{{level}}" style="width:{{percent}}%"></span></span></td><td class="num">{{used}} of {{limit}}</td></tr>{{/bars}}
    </table></div>{{/projects}}
    {{^projects}}<p class="muted">no project is visible to you</p>{{/projects}}</div>
    <h2>Hosts</h2>
    {{#hostsProblem}}<p class="muted">{{hostsProblem}}</p>{{/hostsProblem}}
    <div class="cards">{{#hosts}}<div class="card host" data-host="{{name}}"><b>{{name}}</b> <span class="muted">{{state}}</span><table>
    {{#bars}}<tr><td>{{label}}</td><td><span class="bar"><span class="{{level}}" style="width:{{percent}}%"></span></span></td><td class="num">{{used}} of {{limit}}</td></tr>{{/bars}}
    </table></div>{{/hosts}}</div>
    {{> footer}}
    """

    static let launch = """
    {{> header}}
    <p class="muted">The form becomes one launch file per instance, copied to <code>instances/NAME</code>: every option is
    checked and applied at once, and what you leave empty takes <code>/defaults</code>.</p>
    <form id="launch" method="post" action="/launch?csrf={{csrf}}">
    <label>Instance name <input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._-]*"></label>
    <label>Count <input name="count" type="number" min="1" max="100" value="1"></label>
    {{#form}}
    <label>Image <select name="image"><option value="">(default)</option>{{#images}}<option{{#selected}} selected{{/selected}}>{{value}}</option>{{/images}}</select></label>
    <label>Flavor <select name="flavor"><option value="">(default)</option>{{#flavors}}<option{{#selected}} selected{{/selected}}>{{value}}</option>{{/flavors}}</select></label>
    <label>Key pair <select name="key_name"><option value="">(default)</option>{{#keypairs}}<option{{#selected}} selected{{/selected}}>{{value}}</option>{{/keypairs}}</select></label>
    <label>Network <select name="network"><option value="">(default)</option>{{#networks}}<option{{#selected}} selected{{/selected}}>{{value}}</option>{{/networks}}</select></label>
    <label>Server group <select name="group"><option value="">(none)</option>{{#groups}}<option{{#selected}} selected{{/selected}}>{{value}}</option>{{/groups}}</select></label>
    <label>Security groups <select name="security_groups" multiple>{{#securityGroups}}<option{{#selected}} selected{{/selected}}>{{value}}</option>{{/securityGroups}}</select></label>
    {{/form}}
    <label>User data (cloud-init)<br><textarea name="user_data" placeholder="#cloud-config"></textarea></label>
    <button type="submit" id="launch-submit">Launch</button>
    </form>
    {{> footer}}
    """

    static let collection = """
    {{> header}}
    {{#table}}{{#spec}}<p class="muted">{{concept}} · <code>/{{path}}</code></p>{{/spec}}
    {{#problem}}<div class="notice bad">{{problem}}</div>{{/problem}}
    <table id="collection"><thead><tr><th>Name</th>{{#columns}}<th>{{.}}</th>{{/columns}}<th></th></tr></thead><tbody>
    {{#rows}}<tr data-name="{{name}}"><td>{{name}}</td>{{#cells}}<td>{{#lines}}{{.}}<br>{{/lines}}</td>{{/cells}}
    <td><form class="inline" method="post" action="/c/{{slug}}/delete?csrf={{csrf}}" data-confirm="Delete {{name}}?"><input type="hidden" name="name" value="{{name}}"><button type="submit" class="danger">delete</button></form></td></tr>{{/rows}}
    </tbody></table>{{/table}}
    <h2>Create</h2>
    <form id="create" method="post" action="/c/{{slug}}/create?csrf={{csrf}}">
    <label>Name <input name="name" required placeholder="{{nameHint}}"></label>
    {{#fields}}<label>{{name}} {{#multiline}}<br><textarea name="{{name}}" placeholder="{{placeholder}}"></textarea>{{/multiline}}{{^multiline}}<input name="{{name}}" placeholder="{{placeholder}}">{{/multiline}}</label>{{/fields}}
    <button type="submit">Create</button></form>
    {{> footer}}
    """

    static let images = """
    {{> header}}
    <p class="muted">Glance images: each is a file in <code>/images</code>; its record is <code>/images.d/NAME</code>.</p>
    <table id="collection"><thead><tr><th>Name</th>{{#columns}}<th>{{.}}</th>{{/columns}}<th></th></tr></thead><tbody>
    {{#rows}}<tr data-name="{{name}}"><td>{{name}}</td>{{#cells}}<td>{{#lines}}{{.}}<br>{{/lines}}</td>{{/cells}}
    <td><form class="inline" method="post" action="/images/delete?csrf={{csrf}}" data-confirm="Delete image {{name}}?"><input type="hidden" name="name" value="{{name}}"><button type="submit" class="danger">delete</button></form></td></tr>{{/rows}}
    </tbody></table>
    <h2>Upload</h2>
    <form id="upload"><label>Name <input name="name" id="upload-name" required></label>
    <label>File <input type="file" id="upload-file" required></label>
    <button type="submit" id="upload-submit">Upload</button> <span id="upload-progress" class="muted"></span></form>
    {{> footer}}
    """

    static let events = """
    {{> header}}
    <p class="muted">The cloud's log, <code>/events</code>, as you may read it; new lines appear at the top.</p>
    <label>Filter <input id="filter" placeholder="instance.active, web1, errno=…"></label>
    <ul class="events" id="events" data-live="all">{{#lines}}<li>{{.}}</li>{{/lines}}</ul>
    {{> footer}}
    """

    static let problem = """
    {{> header}}
    <div class="notice bad" id="problem">{{message}}</div>
    <p><a href="javascript:history.back()">Back</a></p>
    {{> footer}}
    """
}
