// Notebook parameters for papermill from a CommandLineTool's inputs.
// Every input except the notebook itself becomes a parameter of the same name; File and
// Directory values become their staged paths, so the notebook sees plain strings. A null input
// is passed as None on purpose: the CWL default, not the notebook default, then decides.
// The result is JSON, which papermill reads as YAML (-y).
// Used by the aggregation tool, whose inputs are arrays of staged directories and files: CWL
// has no JavaScript-free way to turn those into a list of paths. The other tools bind each
// input to its parameter (-rNAME, -pNAME, -y) and start no node process.
function papermill_parameters(inputs) {
  var path_of = function (value) {
    if (value !== null && typeof value === "object" && (value["class"] === "File" || value["class"] === "Directory")) {
      return value.path;
    }
    return value;
  };
  var parameters = {};
  for (var name in inputs) {
    if (name === "notebook") {
      continue;
    }
    var value = inputs[name];
    if (value === undefined) {
      value = null;
    }
    parameters[name] = Array.isArray(value) ? value.map(path_of) : path_of(value);
  }
  return JSON.stringify(parameters);
}
