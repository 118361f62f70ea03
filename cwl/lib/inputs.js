// The GeoJSON inputs (aoi, glacier_outlines, points_of_interest) in the Workflow and the tools.
//
// GeoJSON text too long for a command line becomes a file. The tools pass text inputs to
// papermill as arguments, and Linux refuses any one argument over 128 KiB ("[Errno 7] Argument
// list too long"): the outlines of a large glacier (RGI 7.0) are megabytes of GeoJSON. A File
// literal is written by the runner and staged into the step like any File input, and the step
// receives its path. 32768 UTF-16 code units are at most 96 KiB of UTF-8. Shorter text, and
// anything that is not GeoJSON text (W,S,E,N, a URL, lon,lat pairs), stays as it is.
var LONGEST_ARGUMENT = 32768;

function text_as_file(value, basename) {
  if (typeof value === "string" && value.length > LONGEST_ARGUMENT && value.replace(/^\s+/, "").charAt(0) === "{") {
    return {"class": "File", "basename": basename, "contents": value};
  }
  return value;
}

// Whether a tool reads one of these input values from the network: a string that is an http(s)
// URL. The aggregation tool asks for network access only then (NetworkAccess).
function reads_url(values) {
  for (var i = 0; i < values.length; i++) {
    if (typeof values[i] === "string" && /^\s*https?:\/\//i.test(values[i])) {
      return true;
    }
  }
  return false;
}
