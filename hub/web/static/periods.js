/* A ledger's period forms (templates/_report.html, period_forms): the station chosen in the day
   form's list is carried by the month and range forms too, chosen or not yet shown. */
(function () {
  "use strict";
  document.querySelectorAll("[data-periods]").forEach(function (box) {
    var list = box.querySelector('form select[name="station"]');
    if (!list) { return; }
    function follow() {
      box.querySelectorAll('input[data-follows="station"]').forEach(function (field) { field.value = list.value; });
    }
    list.addEventListener("change", follow);
    follow();  // a choice the browser restored (back button) counts as well
  });
})();
