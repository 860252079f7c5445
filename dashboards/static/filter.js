(function () {
  var input = document.getElementById("filter");
  var select = document.getElementById("cm-filter");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#worklist tbody tr"));
  var count = document.getElementById("filter-count");
  function apply() {
    var terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var cm = select ? select.value : "";
    var shown = 0;
    rows.forEach(function (tr) {
      var text = tr.textContent.toLowerCase();
      var ok = terms.every(function (t) { return text.indexOf(t) !== -1; }) &&
               (!cm || tr.getAttribute("data-cm") === cm);
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " rows shown";
  }
  input.addEventListener("input", apply);
  if (select) { select.addEventListener("change", apply); }
  apply();
})();
