(function () {
  // The page's filter box and care-manager choice apply to every table with class "filterable": a
  // row stays when every word typed is in its text and its data-cm is the care manager chosen.
  // Each table's count goes into the element with data-count-for="<table id>".
  var input = document.getElementById("filter");
  var select = document.getElementById("cm-filter");
  var tables = Array.prototype.slice.call(document.querySelectorAll("table.filterable"));
  function apply() {
    var terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var cm = select ? select.value : "";
    tables.forEach(function (table) {
      var rows = Array.prototype.slice.call(table.tBodies[0].rows);
      var shown = 0;
      rows.forEach(function (tr) {
        var text = tr.textContent.toLowerCase();
        var ok = terms.every(function (t) { return text.indexOf(t) !== -1; }) &&
                 (!cm || tr.getAttribute("data-cm") === cm);
        tr.hidden = !ok;
        if (ok) { shown += 1; }
      });
      var count = document.querySelector('[data-count-for="' + table.id + '"]');
      if (count) {
        count.textContent = (shown === rows.length ? "Showing all " + rows.length + " rows."
                             : "Showing " + shown + " of " + rows.length + " rows (filtered).");
      }
    });
  }
  input.addEventListener("input", apply);
  if (select) { select.addEventListener("change", apply); }
  apply();
})();
