// Gantry's GraphiQL page: the endpoint is this page's own URL, so it works behind any
// prefix (a Lambda Function URL, the devserver). See README.md beside this file.
(function () {
  "use strict";
  var fragment = new URLSearchParams(window.location.hash.slice(1));
  var token = fragment.get("token");
  if (token) {
    window.sessionStorage.setItem("gantry-token", token);
    fragment.delete("token");
    var rest = fragment.toString();
    window.history.replaceState(null, "", window.location.pathname + window.location.search + (rest ? "#" + rest : ""));
  }
  token = token || window.sessionStorage.getItem("gantry-token");

  var search = new URLSearchParams(window.location.search);
  var props = {
    fetcher: GraphiQL.createFetcher({ url: window.location.origin + window.location.pathname }),
    shouldPersistHeaders: false,
    defaultQuery: "# Press the run button (or Ctrl-Enter) to send a query.\n{\n  components {\n    name\n    imageRepository\n  }\n}\n",
  };
  if (token) {
    props.defaultHeaders = JSON.stringify({ Authorization: "Bearer " + token }, null, 2);
    props.defaultEditorToolsVisibility = "headers";
  }
  if (search.get("query")) props.query = search.get("query");
  if (search.get("variables")) props.variables = search.get("variables");
  if (fragment.has("docs")) props.visiblePlugin = GraphiQL.React.DOC_EXPLORER_PLUGIN;

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(GraphiQL, props));

  if (fragment.has("run")) {
    // Run once the schema has loaded (the documentation explorer lists the root types then).
    var tries = 0;
    var timer = window.setInterval(function () {
      var button = document.querySelector(".graphiql-execute-button");
      var loaded = !fragment.has("docs") || document.querySelector(".graphiql-doc-explorer-root-type, .graphiql-doc-explorer-content a");
      if ((button && loaded) || ++tries > 100) {
        window.clearInterval(timer);
        if (button) button.click();
      }
    }, 100);
  }
})();
