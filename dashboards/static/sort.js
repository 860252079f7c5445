(function () {
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      th.classList.add("sortable");
      th.tabIndex = 0;
      function sort() {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        function key(tr) {
          var td = tr.cells[col];
          var v = td ? td.getAttribute("data-sort") : null;
          if (v !== null && v !== "") { return parseFloat(v); }
          return td ? td.textContent.trim().toLowerCase() : "";
        }
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          var nx = typeof x === "number", ny = typeof y === "number";
          // a cell with a number (data-sort) and one without ("—"): the number first, either way
          if (nx !== ny) { return nx ? -1 : 1; }
          var c = nx ? x - y : String(x).localeCompare(String(y));
          return asc ? c : -c;
        });
        rows.forEach(function (tr) { body.appendChild(tr); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
    });
  });
})();
