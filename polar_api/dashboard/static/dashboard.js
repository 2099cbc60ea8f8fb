/* polar-flow dashboard: fetch the page's one JSON document, then write its cards, messages and tables and
 * draw its charts with plotly. Every value comes from the JSON as the server sent it; a null is a gap in a
 * line (connectgaps: false) and an empty cell in a table, never a zero. No inline script: the page passes
 * what this needs in data- attributes of <body>. */
(function () {
  "use strict";

  var body = document.body;
  var dataUrl = body.getAttribute("data-data-url");
  if (!dataUrl) {
    return;
  }

  var COLORS = {
    primary: "#1f6f6a",
    secondary: "#6b4fa0",
    nightly: "#7fa9a4",
    baseline: "#55636a",
    band: "rgba(46, 107, 69, 0.14)",
    heart: "#b0503c",
    warning: "#c98a12",
    critical: "#a33a2c",
    contributor: "#1f6f6a",
    progress: "#3b7f9c",
    deep: "#2f3f8f",
    rem: "#7a63b8",
    light: "#9db7dc",
    muted: "#b5bfbb",
    load: "#3b7f9c",
    acute: "#c0632b",
    chronic: "#1f6f6a",
    significant: "#1f6f6a",
    "trend-good": "#2e6b45",
    "trend-bad": "#b0503c",
    "trend-neutral": "#9fb0aa",
    coverage: "#3b7f9c"
  };
  var FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  var numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (name === "text") {
        node.textContent = attributes[name];
      } else if (attributes[name] !== null && attributes[name] !== undefined && attributes[name] !== false) {
        node.setAttribute(name, attributes[name] === true ? "" : attributes[name]);
      }
    });
    (children || []).forEach(function (child) {
      if (child) {
        node.appendChild(child);
      }
    });
    return node;
  }

  function formatCell(value) {
    if (value === null || value === undefined) {
      return { text: "—", missing: true };
    }
    if (typeof value === "number") {
      return { text: numberFormat.format(value), numeric: true };
    }
    if (typeof value === "boolean") {
      return { text: value ? "yes" : "no" };
    }
    return { text: String(value) };
  }

  function setStatus(text, tone) {
    var status = document.getElementById("status");
    status.textContent = text;
    status.className = "status" + (tone ? " status-" + tone : "");
  }

  function dateText(iso) {
    var parts = iso.split("-");
    var day = new Date(Date.UTC(+parts[0], +parts[1] - 1, +parts[2]));
    return day.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  }

  /* ---- cards, messages, tables ---------------------------------------------------------------------- */

  function renderCards(cards) {
    var holder = document.getElementById("cards");
    cards.forEach(function (card) {
      holder.appendChild(
        el("article", { class: "card tone-" + card.tone }, [
          el("h3", { text: card.label }),
          el("p", { class: "value", text: card.value }),
          card.detail ? el("p", { class: "detail", text: card.detail }) : null
        ])
      );
    });
  }

  function renderMessages(messages) {
    if (!messages.length) {
      return;
    }
    var list = document.getElementById("messages");
    messages.forEach(function (message) {
      list.appendChild(
        el("li", { class: "tone-" + message.tone }, [
          el("span", { class: "kind", text: message.kind === "suggestion" ? "Suggestion" : message.priority }),
          el("p", { text: message.text }),
          message.detail ? el("p", { class: "detail", text: message.detail }) : null
        ])
      );
    });
    document.getElementById("messages-section").hidden = false;
  }

  function tableElement(caption, columns, rows, visibleCaption) {
    var head = el("tr", {}, columns.map(function (name) {
      return el("th", { scope: "col", text: name });
    }));
    var bodyRows = rows.map(function (row) {
      return el("tr", {}, row.map(function (value, index) {
        var cell = formatCell(value);
        var classes = [cell.numeric ? "num" : "", cell.missing ? "missing" : ""].join(" ").trim();
        return el(index === 0 ? "th" : "td", { scope: index === 0 ? "row" : null, class: classes || null, text: cell.text });
      }));
    });
    return el("table", {}, [
      el("caption", { class: visibleCaption ? null : "visually-hidden", text: caption }),
      el("thead", {}, [head]),
      el("tbody", {}, bodyRows)
    ]);
  }

  function renderTables(tables) {
    var holder = document.getElementById("tables");
    tables.forEach(function (table) {
      var card = el("section", { class: "table-card", id: "table-" + table.id, "aria-labelledby": "table-" + table.id + "-title" }, [
        el("h2", { id: "table-" + table.id + "-title", text: table.caption })
      ]);
      if (table.rows.length) {
        card.appendChild(el("div", { class: "table-wrap" }, [tableElement(table.caption, table.columns, table.rows, false)]));
      } else {
        card.appendChild(el("p", { class: "empty", text: table.empty }));
      }
      holder.appendChild(card);
    });
  }

  /* ---- charts --------------------------------------------------------------------------------------- */

  function traceLabel(trace) {
    return trace.unit ? trace.name + " (" + trace.unit + ")" : trace.name;
  }

  /* The chart's data as rows: one per category or day, one column per trace (heatmaps: one per row label). */
  function chartRows(chart) {
    var heat = chart.traces.filter(function (t) { return t.kind === "heatmap"; })[0];
    if (heat) {
      return {
        columns: [chart.x_title].concat(heat.rows),
        rows: chart.x.map(function (x, i) {
          return [x].concat(heat.z.map(function (row) { return row[i] === null ? null : "data"; }));
        })
      };
    }
    var keys = chart.x.slice();
    chart.traces.forEach(function (trace) {
      (trace.x || []).forEach(function (x) {
        if (keys.indexOf(x) < 0) {
          keys.push(x);
        }
      });
    });
    var columns = [chart.x_title].concat(chart.traces.map(traceLabel));
    var rows = keys.map(function (key) {
      return [key].concat(chart.traces.map(function (trace) {
        var xs = trace.x || chart.x;
        var index = xs.indexOf(key);
        return index < 0 ? null : trace.y[index];
      }));
    });
    return { columns: columns, rows: rows };
  }

  function plotlyTrace(chart, trace) {
    var xs = trace.x || chart.x;
    var color = COLORS[trace.style] || COLORS.primary;
    var unit = trace.unit ? " " + trace.unit : "";
    var hover = (chart.horizontal ? "%{x:.2f}" : "%{y:.2f}") + unit + (trace.text ? "<br>%{text}" : "") + "<extra>" + trace.name + "</extra>";
    var base = { name: trace.name, hovertemplate: hover, text: trace.text || undefined, textposition: "none" };
    if (trace.kind === "heatmap") {
      return {
        type: "heatmap", x: chart.x, y: trace.rows, z: trace.z, name: trace.name, showscale: false,
        colorscale: [[0, color], [1, color]], xgap: 1, ygap: 3, hoverongaps: false,
        hovertemplate: "%{y}: data on %{x}<extra></extra>"
      };
    }
    if (trace.kind === "bar") {
      return Object.assign(base, chart.horizontal
        ? { type: "bar", orientation: "h", x: trace.y, y: xs, marker: { color: color } }
        : { type: "bar", x: xs, y: trace.y, marker: { color: color } });
    }
    if (trace.kind === "markers") {
      return Object.assign(base, {
        type: "scatter", mode: "markers", x: xs, y: trace.y,
        marker: { color: color, size: 11, symbol: trace.style === "critical" ? "diamond" : "triangle-up", line: { color: "#ffffff", width: 1 } }
      });
    }
    if (trace.kind === "band_low" || trace.kind === "band_high") {
      return Object.assign(base, {
        type: "scatter", mode: "lines", x: xs, y: trace.y, connectgaps: false,
        line: { width: 0, color: "rgba(46, 107, 69, 0.35)" },
        fill: trace.kind === "band_high" ? "tonexty" : "none", fillcolor: color,
        showlegend: trace.kind === "band_high",
        name: trace.kind === "band_high" ? trace.name.replace(/, high$/, "") : trace.name
      });
    }
    return Object.assign(base, {
      /* markers too, so a day with data between two gaps still shows */
      type: "scatter", mode: "lines+markers", x: xs, y: trace.y, connectgaps: false,
      line: { color: color, width: trace.style === "nightly" ? 1.5 : 2.5 },
      marker: { color: color, size: xs.length > 120 ? 3 : 5 }
    });
  }

  function plotlyLayout(chart) {
    var categoryAxis = { title: { text: chart.x_title }, automargin: true, gridcolor: "#eef1f0", linecolor: "#b9c2be" };
    var valueAxis = { title: { text: chart.y_title }, automargin: true, gridcolor: "#e6eae8", zerolinecolor: "#b9c2be", linecolor: "#b9c2be" };
    if (chart.y_range) {
      valueAxis.range = chart.y_range;
    }
    if (chart.x_kind === "date") {
      categoryAxis.type = "date";
      categoryAxis.range = [chart.x[0] + " 00:00", chart.x[chart.x.length - 1] + " 23:59"];
    } else {
      categoryAxis.type = "category";
      categoryAxis.categoryorder = "array"; /* the server's order, whichever trace a category is in */
      categoryAxis.categoryarray = chart.x;
    }
    var layout = {
      font: { family: FONT, size: 12, color: "#1e2a2f" },
      margin: { l: 10, r: 10, t: 10, b: 10 },
      paper_bgcolor: "#ffffff",
      plot_bgcolor: "#ffffff",
      barmode: chart.barmode,
      bargap: 0.15,
      showlegend: chart.traces.length > 1,
      legend: { orientation: "h", x: 0, xanchor: "left", y: 1.02, yanchor: "bottom" },
      hovermode: chart.x_kind === "date" ? "x unified" : "closest",
      shapes: (chart.reference || []).map(function (band) {
        return { type: "rect", xref: "paper", x0: 0, x1: 1, y0: band.y0, y1: band.y1, fillcolor: "rgba(46, 107, 69, 0.08)", line: { width: 0 }, layer: "below" };
      })
    };
    if (chart.horizontal) {
      categoryAxis.autorange = "reversed";
      categoryAxis.title = { text: "" }; /* the labels name themselves; the table's first column says what they are */
      layout.xaxis = valueAxis;
      layout.yaxis = categoryAxis;
    } else {
      layout.xaxis = categoryAxis;
      layout.yaxis = valueAxis;
    }
    return layout;
  }

  function chartCard(chart) {
    var id = "chart-" + chart.id;
    var table = chartRows(chart);
    return el("section", { class: "chart-card", "aria-labelledby": id + "-title" }, [
      el("h2", { id: id + "-title", text: chart.title }),
      el("p", { class: "chart-summary", id: id + "-summary", text: chart.summary }),
      el("div", { class: "chart", id: id, role: "img", "aria-labelledby": id + "-title", "aria-describedby": id + "-summary", "data-chart-id": chart.id }, [
        el("div", { class: "chart-placeholder", text: chart.title + ": drawing…" })
      ]),
      el("details", {}, [
        el("summary", { text: "Show the data as a table" }),
        el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": chart.title + ", data table" }, [
          tableElement(chart.title, table.columns, table.rows, true)
        ])
      ])
    ]);
  }

  function drawCharts(charts) {
    var holder = document.getElementById("charts");
    charts.forEach(function (chart) {
      holder.appendChild(chartCard(chart));
    });
    if (typeof window.Plotly === "undefined") {
      setStatus("The chart library did not load; the tables under each chart hold the same data.", "bad");
      return Promise.resolve();
    }
    var config = {
      responsive: true, displaylogo: false, displayModeBar: false
    };
    return Promise.all(charts.map(function (chart) {
      var node = document.getElementById("chart-" + chart.id);
      node.textContent = "";
      var traces = chart.traces.map(function (trace) { return plotlyTrace(chart, trace); });
      return window.Plotly.newPlot(node, traces, plotlyLayout(chart), config);
    }));
  }

  /* ---- the page ------------------------------------------------------------------------------------- */

  function render(data) {
    var range = data.page === "patterns" ? "" : " · " + dateText(data.since) + " to " + dateText(data.until);
    setStatus(
      (data.as_of ? "Latest data: " + dateText(data.as_of) : "No data in the snapshot yet") + range +
      " · snapshot " + data.snapshot.generation,
      "neutral"
    );
    renderCards(data.cards);
    renderMessages(data.messages);
    renderTables(data.tables);
    var notes = document.getElementById("notes");
    data.notes.forEach(function (note) {
      notes.appendChild(el("li", { text: note }));
    });
    return drawCharts(data.charts);
  }

  function signInAgain(detail) {
    var login = body.getAttribute("data-login-url") || "/dashboard/login";
    window.location.assign((detail && detail.login) || login + "?reason=invalid");
  }

  window.fetch(dataUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      return response.json().then(function (payload) {
        return { ok: response.ok, status: response.status, payload: payload };
      });
    })
    .then(function (answer) {
      if (answer.status === 401) {
        signInAgain(answer.payload);
        return null;
      }
      if (!answer.ok) {
        setStatus(answer.payload.detail || "The data could not be loaded (" + answer.status + ").", "bad");
        return null;
      }
      return render(answer.payload);
    })
    .then(function () {
      body.setAttribute("data-ready", "true");
    })
    .catch(function (error) {
      setStatus("The data could not be loaded: " + error.message, "bad");
      body.setAttribute("data-ready", "error");
    });
})();
