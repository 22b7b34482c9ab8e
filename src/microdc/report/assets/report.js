// Draws every figure of the report from the JSON embedded in the page; no network is ever used.
(function () {
  "use strict";
  var figures = JSON.parse(document.getElementById("figures").textContent);
  var config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  var nodes = document.querySelectorAll("[data-figure]");
  for (var i = 0; i < nodes.length; i++) {
    var fig = figures[nodes[i].getAttribute("data-figure")];
    if (fig) { Plotly.newPlot(nodes[i], fig.data, fig.layout, config); }
  }
  // Figures inside closed <details> are drawn at zero width; redraw them when opened.
  var details = document.querySelectorAll("details");
  for (var j = 0; j < details.length; j++) {
    details[j].addEventListener("toggle", function (ev) {
      var inner = ev.target.querySelectorAll(".js-plotly-plot");
      for (var k = 0; k < inner.length; k++) { Plotly.Plots.resize(inner[k]); }
    });
  }
})();
