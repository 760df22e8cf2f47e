/* sr-core map controls (this project's own code): swipe between two panes, an opacity slider, a legend box and a
   message when online tiles cannot load. Everything runs in the browser: no round trip to the server. */
(function () {
  "use strict";

  function stop(el) {
    L.DomEvent.disableClickPropagation(el);
    L.DomEvent.disableScrollPropagation(el);
    ["mousedown", "touchstart", "pointerdown", "dblclick"].forEach(function (ev) {
      L.DomEvent.on(el, ev, L.DomEvent.stopPropagation);
    });
  }

  /* Swipe: layers in pane `left` are shown left of the divider, layers in pane `right` right of it. */
  window.srSwipe = function (map, left, right, start) {
    var box = map.getContainer();
    var wrap = L.DomUtil.create("div", "sr-swipe", box);
    var line = L.DomUtil.create("div", "sr-swipe-line", wrap);
    var range = L.DomUtil.create("input", "sr-swipe-range", wrap);
    range.type = "range"; range.min = 0; range.max = 1; range.step = "any";
    range.value = start === undefined ? 0.5 : start;
    range.setAttribute("aria-label", "swipe");
    stop(range);
    function clip() {
      var size = map.getSize();
      var nw = map.containerPointToLayerPoint([0, 0]);
      var se = map.containerPointToLayerPoint(size);
      var x = nw.x + size.x * Number(range.value);
      var l = map.getPane(left), r = map.getPane(right);
      if (l) { l.style.clip = "rect(" + [nw.y, x, se.y, nw.x].join("px,") + "px)"; }
      if (r) { r.style.clip = "rect(" + [nw.y, se.x, se.y, x].join("px,") + "px)"; }
      line.style.left = (size.x * Number(range.value)) + "px";
      box.setAttribute("data-swipe", Number(range.value).toFixed(3));
    }
    range.addEventListener("input", clip);
    map.on("move zoom resize viewreset", clip);
    clip();
    window.srSwipeRange = range;
    return range;
  };

  /* Opacity of the given layers (anything with setOpacity), from a slider in the map. */
  window.srOpacity = function (map, layers, label, start) {
    var ctl = L.control({ position: "bottomleft" });
    ctl.onAdd = function () {
      var div = L.DomUtil.create("div", "sr-box sr-opacity");
      div.innerHTML = "<label>" + label + " <input type='range' min='0' max='1' step='0.01' value='" +
        (start === undefined ? 0.8 : start) + "'></label>";
      stop(div);
      var input = div.querySelector("input");
      function apply() {
        layers.forEach(function (l) { if (l && l.setOpacity) { l.setOpacity(Number(input.value)); } });
        map.getContainer().setAttribute("data-opacity", input.value);
      }
      input.addEventListener("input", apply);
      setTimeout(apply, 0);
      return div;
    };
    ctl.addTo(map);
    return ctl;
  };

  /* A legend (HTML) in a corner. */
  window.srLegend = function (map, html, position) {
    var ctl = L.control({ position: position || "bottomright" });
    ctl.onAdd = function () {
      var div = L.DomUtil.create("div", "sr-box sr-legend");
      div.innerHTML = html;
      stop(div);
      return div;
    };
    ctl.addTo(map);
    return ctl;
  };

  /* A checkbox in the map that shows or hides a pane (e.g. the clouds over the frame). The pane belongs to the map, so
     the choice holds while the layers in it are swapped (a new date). */
  window.srPaneToggle = function (map, pane, label, checked) {
    var ctl = L.control({ position: "topright" });
    ctl.onAdd = function () {
      var div = L.DomUtil.create("div", "sr-box sr-toggle");
      div.innerHTML = "<label><input type='checkbox'" + (checked === false ? "" : " checked") + "> </label>";
      div.querySelector("label").appendChild(document.createTextNode(label));
      stop(div);
      var input = div.querySelector("input");
      function apply() {
        var p = map.getPane(pane);
        if (p) { p.style.display = input.checked ? "" : "none"; }
        map.getContainer().setAttribute("data-" + pane, input.checked ? "shown" : "hidden");
      }
      input.addEventListener("change", apply);
      setTimeout(apply, 0);
      return div;
    };
    ctl.addTo(map);
    return ctl;
  };

  /* Online tiles: say so plainly when they cannot load (offline, firewall), once. */
  window.srTileWarning = function (map, layer, message) {
    var shown = false;
    layer.on("tileerror", function () {
      if (shown) { return; }
      shown = true;
      var ctl = L.control({ position: "topright" });
      ctl.onAdd = function () {
        var div = L.DomUtil.create("div", "sr-box sr-warning");
        div.textContent = message;
        return div;
      };
      ctl.addTo(map);
    });
  };
})();
